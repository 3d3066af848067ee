"""Stream keys: owner-only read and rotation, the ingest authorize responder over real NATS, and
the key's secrecy (responses, events, outbox, logs)."""

import logging
import re
import uuid

import orjson

from contracts.requests import IngestAuthorizeReply, IngestAuthorizeRequest
from contracts.subjects import CHANNELS_INGEST_AUTHORIZE
from servicekit.logging import JsonFormatter


async def ask(nc, payload: bytes) -> IngestAuthorizeReply:
    msg = await nc.request(CHANNELS_INGEST_AUTHORIZE, payload, timeout=3)
    return IngestAuthorizeReply.model_validate_json(msg.data)


def request_for(key: str) -> bytes:
    return IngestAuthorizeRequest(stream_key=key, client_ip="127.0.0.1").to_json_bytes()


async def test_owner_reads_and_rotates_the_key(client, make_user, create_channel, problem, published, eventually):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/stream-key"

    r = await client.get(url, headers=alice.headers)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    key = r.json()["streamKey"]
    assert r.json()["rtmpUrl"] == "rtmp://ingest.test:1935/live"
    # SRT ingest (API.md Extensions): the same key, as the streamid OBS's one URL field carries
    assert r.json()["srtUrl"] == f"srt://ingest.test:9000?streamid={key}"
    assert re.fullmatch(r"live_[A-Za-z0-9_-]{43}", key)  # 256 random bits, URL-safe
    assert (await client.get(url, headers=alice.headers)).json()["streamKey"] == key  # stable until rotated

    r = await client.post(f"{url}/rotate", headers=alice.headers)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    new_key = r.json()["streamKey"]
    assert new_key != key and r.json()["rtmpUrl"] == "rtmp://ingest.test:1935/live"
    assert r.json()["srtUrl"] == f"srt://ingest.test:9000?streamid={new_key}"
    assert (await client.get(url, headers=alice.headers)).json()["streamKey"] == new_key

    rotated = await eventually(lambda: published("channel.stream_key_rotated"), message="rotation published")
    assert rotated[0].data.channel_id == ch["id"] and rotated[0].data.rotated_at.tzinfo is not None

    for path, method in ((url, "GET"), (f"{url}/rotate", "POST")):
        problem(await client.request(method, path), 401)
        problem(await client.request(method, path, headers=bob.headers), 403)
        problem(await client.request(method, f"/api/channels/{uuid.uuid4()}/stream-key"
                                     + ("/rotate" if method == "POST" else ""), headers=alice.headers), 404)
        problem(await client.request(method, "/api/channels/garbage/stream-key"
                                     + ("/rotate" if method == "POST" else ""), headers=alice.headers), 404)
    # bob's refused attempt rotated nothing
    assert (await client.get(url, headers=alice.headers)).json()["streamKey"] == new_key


async def test_ingest_authorize_over_nats(client, make_user, create_channel, stream_key, nc):
    alice = make_user()
    ch = await create_channel(alice)
    key = await stream_key(alice, ch["id"])

    reply = await ask(nc, request_for(key))
    assert reply.allowed is True and reply.channel_id == ch["id"] and reply.reason is None

    refused = {
        "empty": await ask(nc, b'{"streamKey": ""}'),
        "absent": await ask(nc, b"{}"),
        "not json": await ask(nc, b"\xff\x00garbage"),
        "not a string": await ask(nc, b'{"streamKey": 12345}'),
        "unknown": await ask(nc, request_for("live_" + "A" * 43)),
        "traversal": await ask(nc, request_for("../../etc/passwd")),
        "slash": await ask(nc, request_for(key + "/x")),
        "backslash": await ask(nc, request_for("live_\\abc")),
        "dots": await ask(nc, request_for("live_..abc")),
        "space": await ask(nc, request_for("live_ abc")),
        "newline": await ask(nc, request_for(key + "\n")),
        "control": await ask(nc, request_for("live_\x00abc")),
        "oversized": await ask(nc, request_for("a" * 129)),
        "huge": await ask(nc, request_for("a" * 100_000)),
        "percent": await ask(nc, request_for("live_%2e%2e")),
    }
    for name, answer in refused.items():
        assert answer.allowed is False and answer.channel_id is None and answer.reason, name
    assert refused["empty"].reason == refused["absent"].reason == "missing stream key"
    assert refused["unknown"].reason == "unknown stream key"
    assert refused["traversal"].reason == refused["oversized"].reason == "malformed stream key"

    # a rotated key stops working at once; the new one works
    r = await client.post(f"/api/channels/{ch['id']}/stream-key/rotate", headers=alice.headers)
    new_key = r.json()["streamKey"]
    old = await ask(nc, request_for(key))
    assert old.allowed is False and old.reason == "unknown stream key"
    assert (await ask(nc, request_for(new_key))).channel_id == ch["id"]

    # the replies never echo what was sent
    for payload in (request_for(key), request_for(new_key), request_for("live_..abc")):
        raw = (await nc.request(CHANNELS_INGEST_AUTHORIZE, payload, timeout=3)).data
        sent = orjson.loads(payload)["streamKey"]
        assert sent.encode() not in raw


async def test_missing_key_row_heals_and_database_failure_refuses(client, make_user, create_channel, sql,
                                                                 channels_app):
    alice = make_user()
    ch = await create_channel(alice)
    await sql("delete from channel_stream_keys")
    r = await client.get(f"/api/channels/{ch['id']}/stream-key", headers=alice.headers)
    assert r.status_code == 200 and r.json()["streamKey"].startswith("live_")
    await sql("delete from channel_stream_keys")
    r = await client.post(f"/api/channels/{ch['id']}/stream-key/rotate", headers=alice.headers)
    assert r.status_code == 200 and r.json()["streamKey"].startswith("live_")

    class BrokenDb:
        def session(self):
            raise ConnectionError("database is down, it said, quoting live_secret")

    authorizer = channels_app.state.ingest_authorizer
    real_runtime = authorizer._runtime
    authorizer._runtime = type("R", (), {"db": BrokenDb()})()
    try:
        reply = await authorizer.answer(request_for("live_" + "B" * 43))
    finally:
        authorizer._runtime = real_runtime
    assert reply.allowed is False and reply.reason == "temporarily unavailable"


async def test_the_key_never_leaves_through_other_doors(client, make_user, create_channel, stream_key, nc,
                                                        published, eventually, sql, caplog):
    caplog.set_level(logging.DEBUG)
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice, "Secret Keeper", slug="secret-keeper")
    first_key = await stream_key(alice, ch["id"])
    await ask(nc, request_for(first_key))
    rotated = await client.post(f"/api/channels/{ch['id']}/stream-key/rotate", headers=alice.headers)
    key = rotated.json()["streamKey"]
    await ask(nc, request_for(key))
    await ask(nc, request_for(first_key))
    await client.put(f"/api/channels/{ch['id']}", headers=alice.headers, json={"description": "edited"})
    await client.post(f"/api/channels/{ch['id']}/follow", headers=bob.headers)
    keys = (first_key, key)

    # responses: every other route's answer, for the owner and for strangers
    bodies = [
        (await client.get("/api/channels/secret-keeper", headers=alice.headers)).text,
        (await client.get("/api/channels/secret-keeper")).text,
        (await client.get(f"/api/channels/{ch['id']}", headers=bob.headers)).text,
        (await client.get("/api/channels", headers=alice.headers)).text,
        (await client.get(f"/api/channels?owner={alice.id}", headers=alice.headers)).text,
        (await client.put(f"/api/channels/{ch['id']}", headers=alice.headers, json={"name": "Keeper"})).text,
        (await client.get(f"/api/channels/{ch['id']}/filters", headers=alice.headers)).text,
        (await client.get(f"/api/channels/{ch['id']}/vod")).text,
        (await client.get(f"/api/channels/{ch['id']}/stream-key", headers=bob.headers)).text,
        (await client.get("/openapi.json")).text,
    ]
    for body in bodies:
        assert not any(k in body for k in keys)

    # events: nothing in JetStream or in the outbox carries it
    await eventually(lambda: published("channel.followed"), message="events relayed")
    stream = await published(raw=True)
    assert {"channel.created", "channel.stream_key_rotated", "channel.updated"} <= {
        m.subject for m in stream}
    for m in stream:
        assert not any(k.encode() in m.data for k in keys)
        assert not any(k in str(m.headers) for k in keys)
    for (payload,) in await sql("select payload from outbox"):
        assert not any(k.encode() in payload for k in keys)

    # logs: neither the messages nor their structured fields, raw or as the JSON formatter writes them
    formatter = JsonFormatter("channels")
    assert caplog.records, "the app logged nothing at all?"
    for record in caplog.records:
        line = formatter.format(record) + record.getMessage() + repr(record.__dict__)
        assert not any(k in line for k in keys), record.getMessage()


def test_the_srt_url_keeps_the_base_options_and_escapes_the_key():
    from channels_service.streamkeys.views import srt_url

    assert srt_url("srt://ingest:9000", "live_a-b") == "srt://ingest:9000?streamid=live_a-b"
    assert srt_url("srt://ingest:9000?latency=200000", "k") == "srt://ingest:9000?latency=200000&streamid=k"
    assert srt_url("srt://ingest:9000", "a&b=c") == "srt://ingest:9000?streamid=a%26b%3Dc"


def test_every_issued_key_matches_the_redaction_rule_for_stream_keys():
    """Logs and error reports (servicekit.logging.STREAM_KEY, one rule for both) recognise a stream
    key by its shape alone; the shape is this service's, so the two must not drift apart."""
    from channels_service.streamkeys.service import new_key
    from servicekit.logging import STREAM_KEY, redact_text

    for _ in range(2000):
        key = new_key()
        assert STREAM_KEY.fullmatch(key), key
        assert key not in redact_text(f"refused {key}, rtmp://ingest/live/{key}?x=1")
