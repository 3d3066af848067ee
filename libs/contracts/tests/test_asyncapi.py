import copy
from pathlib import Path

import orjson
import pytest
from contracts import CATALOG, STREAMS
from contracts.asyncapi import DOCUMENT_PATH, WRITE_COMMAND, build_document, main, render
from contracts.compat import breaking_changes
from contracts.requests import REQUESTS

COMMITTED = Path(__file__).resolve().parents[1] / "asyncapi.json"


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


@pytest.fixture(scope="module")
def doc() -> dict:
    return build_document()


def test_default_path_is_the_committed_file():
    assert DOCUMENT_PATH == COMMITTED


def test_committed_document_is_up_to_date():
    generated = render(build_document())
    committed = COMMITTED.read_bytes() if COMMITTED.exists() else b""
    assert committed == generated, (
        f"{COMMITTED.name} does not match the event catalog: run `{WRITE_COMMAND}` and commit the result"
    )


def test_code_has_no_breaking_change_against_the_committed_document():
    problems = breaking_changes(orjson.loads(COMMITTED.read_bytes()), build_document())
    assert not problems, "breaking changes without a version bump:\n" + "\n".join(problems)


def test_rendering_is_stable():
    assert render(build_document()) == render(build_document())
    text = render(build_document()).decode()
    assert text.endswith("}\n")
    assert text.index('"asyncapi"') < text.index('"channels"') < text.index('"components"')


def test_every_reference_resolves(doc):
    refs = _refs(doc)
    assert len(refs) > 3 * len(CATALOG)
    for ref in refs:
        target: object = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"dangling $ref {ref}"
            target = target[part]


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_every_event_is_documented(event_type, doc):
    entry = CATALOG[event_type]

    channel = doc["channels"][event_type]
    assert channel["address"] == entry.subject
    assert set(channel.get("parameters", {})) == set(entry.parameters)
    assert channel.get("x-jetstream-stream") == (entry.stream.name if entry.stream else None)

    message = doc["components"]["messages"][event_type]
    assert message["x-schema-version"] == entry.version
    assert message["x-publisher"] == entry.publisher
    payload = message["payload"]
    assert payload["properties"]["type"]["const"] == event_type
    assert payload["properties"]["dataschema"]["const"] == entry.dataschema
    assert payload["properties"]["data"] == {"$ref": f"#/components/schemas/{entry.model.__name__}"}
    assert {"id", "type", "source", "time", "dataschema", "data"} <= set(payload["required"])

    operation = doc["operations"][f"send.{event_type}"]
    assert operation["action"] == "send"
    assert operation["channel"] == {"$ref": f"#/channels/{event_type}"}
    assert operation["tags"] == [{"name": entry.publisher}]


def test_payload_schemas_use_wire_names(doc):
    schemas = doc["components"]["schemas"]
    assert set(schemas["ChatMessage"]["properties"]) == {
        "id",
        "seq",
        "channelId",
        "streamId",
        "user",
        "content",
        "createdAt",
        "deletedAt",
    }
    assert schemas["StreamStatus"]["enum"] == ["OFFLINE", "LIVE", "ENDING", "ARCHIVED"]
    assert schemas["MediaProvider"]["enum"] == ["local", "mux", "cloudflare"]


def test_request_reply_is_documented(doc):
    for request in REQUESTS:
        operation = doc["operations"][f"send.{request.subject}"]
        assert doc["channels"][request.subject]["address"] == request.subject
        assert operation["reply"]["channel"] == {"$ref": f"#/channels/{request.subject}.reply"}
        assert doc["channels"][f"{request.subject}.reply"]["address"] is None


def test_every_durable_consumer_has_a_receive_operation_per_event(doc):
    from contracts.catalog import CATALOG
    from contracts.consumers import CONSUMERS

    receives = {name: op for name, op in doc["operations"].items() if op["action"] == "receive"}
    expected = {f"receive.{c.name}.{e}" for c in CONSUMERS for e in c.events}
    assert set(receives) == expected and expected
    for consumer in CONSUMERS:
        for event_type in consumer.events:
            op = receives[f"receive.{consumer.name}.{event_type}"]
            # it receives what is published: the channel exists and the event is stored in that stream
            assert op["channel"] == {"$ref": f"#/channels/{event_type}"} and event_type in doc["channels"]
            assert CATALOG[event_type].stream == consumer.stream
            assert op["x-jetstream-durable"] == consumer.name and op["tags"] == [{"name": consumer.service}]


def test_streams_are_documented(doc):
    documented = doc["x-jetstream-streams"]
    assert {name: spec["subjects"] for name, spec in documented.items()} == {
        stream.name: list(stream.subjects) for stream in STREAMS
    }


def test_cli_prints_the_document(capsysbinary):
    assert main([]) == 0
    assert capsysbinary.readouterr().out == render(build_document())


def test_cli_check_and_write(tmp_path, capsys):
    path = tmp_path / "asyncapi.json"
    path.write_bytes(render(build_document()).replace(b"Stream platform events", b"Old title"))

    assert main(["--check", "--path", str(path)]) == 1
    assert WRITE_COMMAND in capsys.readouterr().err

    assert main(["--write", "--path", str(path)]) == 0
    assert path.read_bytes() == render(build_document())
    assert main(["--check", "--path", str(path)]) == 0


def test_cli_check_fails_when_the_document_is_missing(tmp_path, capsys):
    assert main(["--check", "--path", str(tmp_path / "absent.json")]) == 1
    assert WRITE_COMMAND in capsys.readouterr().err


def test_cli_write_refuses_a_breaking_change(tmp_path, capsys):
    # The committed document has a property the code no longer has: writing would remove it.
    committed = copy.deepcopy(build_document())
    profile = committed["components"]["schemas"]["UserProfile"]
    profile["properties"]["pronouns"] = {"type": "string"}
    path = tmp_path / "asyncapi.json"
    path.write_bytes(render(committed))

    assert main(["--write", "--path", str(path)]) == 1
    err = capsys.readouterr().err
    assert "user.registered v1: payload.data.pronouns: property removed" in err
    assert path.read_bytes() == render(committed)

    assert main(["--check", "--path", str(path)]) == 1
    assert "pronouns" in capsys.readouterr().err

    assert main(["--write", "--allow-breaking", "--path", str(path)]) == 0
    assert path.read_bytes() == render(build_document())
