import re

import pytest
from contracts import CATALOG
from contracts.asyncapi import build_document
from contracts.base import WireModel
from contracts.requests import IngestAuthorizeReply, IngestAuthorizeRequest
from pydantic import BaseModel, ValidationError

# Secrets travel only in request/reply messages, never in an event: events are stored in
# JetStream, replayed to every consumer and copied into their inboxes and logs.
SECRET_NAME = re.compile(r"streamkey|password|passwd|secret|token|apikey|privatekey|credential")


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _property_names(node: object, doc: dict | None = None, seen: set[str] | None = None) -> set[str]:
    """Every property name reachable from a JSON schema, following local $refs into ``doc``."""
    seen = set() if seen is None else seen
    names: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if doc is not None and isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            target: object = doc
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]  # type: ignore[index]
            names |= _property_names(target, doc, seen)
        names |= set(node.get("properties", {}))
        for value in node.values():
            names |= _property_names(value, doc, seen)
    elif isinstance(node, list):
        for item in node:
            names |= _property_names(item, doc, seen)
    return names


def _secret_like(names: set[str]) -> set[str]:
    return {name for name in names if SECRET_NAME.search(_normalise(name))}


def _model_field_names(model: type[BaseModel]) -> set[str]:
    """Wire names and Python names of every field, nested models included."""
    return _property_names(model.model_json_schema(by_alias=True)) | _property_names(
        model.model_json_schema(by_alias=False)
    )


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_no_event_payload_has_a_secret_like_field(event_type):
    model = CATALOG[event_type].model
    assert not _secret_like(_model_field_names(model)), f"{event_type} ({model.__name__}) carries a secret"


def test_no_event_in_the_asyncapi_document_has_a_secret_like_field():
    doc = build_document()
    events = {n: m for n, m in doc["components"]["messages"].items() if "x-dataschema" in m}
    assert set(events) == set(CATALOG)
    for name, message in events.items():
        names = _property_names(message["payload"], doc) | _property_names(message["headers"], doc)
        assert "userId" in names or "id" in names  # the walk does reach the payload's fields
        assert not _secret_like(names), f"{name}: {_secret_like(names)}"


def test_the_detector_finds_a_planted_secret():
    class Nested(WireModel):
        stream_key: str

    class Leaky(WireModel):
        channel_id: str
        settings: Nested

    assert _secret_like(_model_field_names(Leaky)) == {"stream_key", "streamKey"}
    assert _secret_like({"accessToken", "Password", "channelId"}) == {"accessToken", "Password"}


def test_stream_key_is_masked_outside_the_wire():
    request = IngestAuthorizeRequest(stream_key="live_sk_9f8e7d", client_ip="203.0.113.7")

    assert "live_sk_9f8e7d" not in repr(request)
    assert "live_sk_9f8e7d" not in str(request.model_dump())
    assert request.to_json_bytes() == b'{"streamKey":"live_sk_9f8e7d","clientIp":"203.0.113.7"}'
    parsed = IngestAuthorizeRequest.model_validate_json(request.to_json_bytes())
    assert parsed.stream_key.get_secret_value() == "live_sk_9f8e7d"


def test_empty_stream_key_is_refused():
    with pytest.raises(ValidationError):
        IngestAuthorizeRequest(stream_key="")


def test_authorize_reply_names_a_channel_exactly_when_allowed():
    assert IngestAuthorizeReply(allowed=True, channel_id="c1").channel_id == "c1"
    assert IngestAuthorizeReply.model_validate_json(b'{"allowed":false,"reason":"unknown key"}').reason
    with pytest.raises(ValidationError):
        IngestAuthorizeReply(allowed=True)
    with pytest.raises(ValidationError):
        IngestAuthorizeReply(allowed=False, channel_id="c1")
