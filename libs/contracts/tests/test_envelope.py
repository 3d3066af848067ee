import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from contracts import (
    CATALOG,
    EventType,
    UnknownEventType,
    UnsupportedEventVersion,
    make_event,
    parse_event,
    spec,
)
from contracts.events import Stream, StreamStatusChanged, StreamViewers, UserProfile
from pydantic import ValidationError

CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")
PROFILE = UserProfile(user_id="u1", username="ada_l", display_name="Ada", avatar=None)


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


def test_every_event_type_has_a_sample(samples):
    assert set(samples) == set(CATALOG)


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_round_trip(event_type, samples):
    data = samples[event_type]
    event = make_event(event_type, data, source=CATALOG[event_type].publisher, subject="agg-1")

    parsed = parse_event(event.to_json_bytes())

    assert type(parsed.data) is CATALOG[event_type].model
    assert parsed.data == data
    assert parsed == event
    assert parsed.type == event_type
    assert parsed.dataschema == f"urn:streamplatform:event:{event_type}:v{CATALOG[event_type].version}"
    assert parsed.nats_headers() == {"Nats-Msg-Id": event.id}


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_wire_field_names_are_camel_case(event_type, samples):
    wire = orjson.loads(make_event(event_type, samples[event_type], source="test").to_json_bytes())

    offenders = {key for key in _keys(wire["data"]) if not CAMEL_CASE.match(key)}
    assert not offenders, f"{event_type}: non-camelCase fields on the wire: {sorted(offenders)}"


def test_wire_form_of_a_user_event():
    wire = orjson.loads(make_event("user.registered", PROFILE, source="auth", subject="u1").to_json_bytes())

    assert wire["data"] == {"userId": "u1", "username": "ada_l", "displayName": "Ada", "avatar": None}
    assert wire["specversion"] == "1.0"
    assert wire["datacontenttype"] == "application/json"
    assert wire["source"] == "auth"
    assert wire["subject"] == "u1"
    assert uuid.UUID(wire["id"]).version == 4


def test_time_is_utc_with_z():
    paris = timezone(timedelta(hours=2))
    event = make_event(
        "user.registered", PROFILE, source="auth", time=datetime(2025, 6, 1, 14, 0, tzinfo=paris)
    )

    assert orjson.loads(event.to_json_bytes())["time"] == "2025-06-01T12:00:00Z"
    assert event.time.utcoffset() == timedelta(0)


def test_default_time_is_now():
    before = datetime.now(UTC)
    event = make_event("user.registered", PROFILE, source="auth")
    assert before <= event.time <= datetime.now(UTC)


def _stream_fields() -> dict:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return {
        "id": "s1",
        "channel_id": "c1",
        "title": "t",
        "description": None,
        "status": "LIVE",
        "start_time": at,
        "end_time": None,
        "viewer_count": 0,
        "peak_viewers": 0,
        "duration": None,
        "hls_url": None,
        "thumbnail_url": None,
        "vod_url": None,
        "is_archived": False,
        "created_at": at,
    }


def test_payload_datetimes_are_utc_with_z():
    data = StreamStatusChanged.model_validate(
        {
            **orjson.loads(Stream(**_stream_fields()).to_json_bytes()),
            "startTime": "2025-01-01T10:00:00+01:00",
            "previousStatus": "OFFLINE",
        }
    )
    wire = orjson.loads(make_event("stream.status_changed", data, source="streams").to_json_bytes())
    assert wire["data"]["startTime"] == "2025-01-01T09:00:00Z"
    assert wire["data"]["previousStatus"] == "OFFLINE"


def test_naive_datetimes_are_refused():
    with pytest.raises(ValidationError):
        make_event("user.registered", PROFILE, source="auth", time=datetime(2025, 1, 1))
    with pytest.raises(ValidationError):
        Stream(**{**_stream_fields(), "created_at": datetime(2025, 1, 1)})


def test_absent_subject_is_omitted_from_the_wire():
    wire = orjson.loads(make_event("user.registered", PROFILE, source="auth").to_json_bytes())
    assert "subject" not in wire


def test_event_id_must_be_a_uuid_and_is_canonicalised():
    with pytest.raises(ValidationError):
        make_event("user.registered", PROFILE, source="auth", id="not-a-uuid")
    given = "0E7F1A6C-3B1D-4C53-9D0B-6B1A2C3D4E5F"
    assert make_event("user.registered", PROFILE, source="auth", id=given).id == given.lower()


def test_make_event_refuses_the_wrong_payload_model():
    with pytest.raises(TypeError, match="UserProfile"):
        make_event("channel.created", PROFILE, source="channels")


def test_make_event_refuses_a_subclass_of_the_payload_model(samples):
    # StreamStatusChanged is a Stream; stream.started must still carry exactly a Stream.
    with pytest.raises(TypeError):
        make_event("stream.started", samples["stream.status_changed"], source="streams")


def test_make_event_accepts_the_enum_member():
    event = make_event(EventType.USER_REGISTERED, PROFILE, source="auth")
    assert event.type == "user.registered"
    assert type(event.type) is str


def test_unknown_event_type():
    with pytest.raises(UnknownEventType, match=r"user\.deleted"):
        make_event("user.deleted", PROFILE, source="auth")
    with pytest.raises(UnknownEventType, match=r"user\.deleted"):
        spec("user.deleted")

    wire = orjson.loads(make_event("user.registered", PROFILE, source="auth").to_json_bytes())
    wire["type"] = "user.deleted"
    with pytest.raises(UnknownEventType) as raised:
        parse_event(orjson.dumps(wire))
    assert raised.value.event_type == "user.deleted"


def _wire(**changes) -> bytes:
    wire = orjson.loads(make_event("user.registered", PROFILE, source="auth").to_json_bytes())
    wire.update(changes)
    return orjson.dumps(wire)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        _wire(data={"userId": "u1"}),
        _wire(data={**PROFILE.model_dump(by_alias=True), "avatar": 42}),
        _wire(time="yesterday"),
        _wire(specversion="0.3"),
        _wire(type=42),
        b'{"id": "0e7f1a6c-3b1d-4c53-9d0b-6b1a2c3d4e5f", "source": "auth"}',
    ],
    ids=[
        "malformed",
        "not-an-object",
        "missing-fields",
        "wrong-type",
        "bad-time",
        "specversion",
        "type-int",
        "no-type",
    ],
)
def test_invalid_events_raise_validation_error(raw):
    with pytest.raises(ValidationError):
        parse_event(raw)


def test_invalid_enum_value_is_refused():
    wire = orjson.loads(
        make_event(
            "stream.viewers", StreamViewers(stream_id="s", channel_id="c", count=1, peak=1), source="x"
        ).to_json_bytes()
    )
    wire["data"]["count"] = -1
    with pytest.raises(ValidationError):
        parse_event(orjson.dumps(wire))


def test_another_schema_version_is_refused():
    with pytest.raises(UnsupportedEventVersion, match="v2"):
        parse_event(_wire(dataschema="urn:streamplatform:event:user.registered:v2"))


def test_unknown_fields_are_ignored_for_forward_compatibility():
    wire = orjson.loads(_wire())
    wire["data"]["pronouns"] = "she/her"
    wire["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    parsed = parse_event(orjson.dumps(wire))

    assert parsed.data == PROFILE


def test_parse_accepts_str():
    raw = make_event("user.registered", PROFILE, source="auth").to_json_bytes()
    assert parse_event(raw.decode()).data == PROFILE


def test_events_are_immutable():
    event = make_event("user.registered", PROFILE, source="auth")
    with pytest.raises(ValidationError):
        event.data.username = "eve"  # type: ignore[misc]
