"""nginx-rtmp callbacks: authorize through channels (NATS), rename, end, police on_update."""

import asyncio
import hashlib
import re
import secrets

import pytest

from media_gateway.ingest.models import RtmpCallback

KEY = "sk_" + secrets.token_urlsafe(24)


def session_of(location: str) -> str:
    m = re.fullmatch(r"rtmp://127\.0\.0\.1:1935/src/([0-9a-f]{32})_src", location)
    assert m, location
    return m.group(1)


async def test_valid_key_is_renamed_to_an_opaque_session(rtmp, channels, events):
    channels.keys[KEY] = "chan-1"
    r = await rtmp("publish", KEY, clientid="11")
    assert r.status_code == 302
    location = r.headers["location"]
    assert KEY not in location
    session_id = session_of(location)
    assert channels.calls[0].stream_key.get_secret_value() == KEY
    assert channels.calls[0].client_ip == "203.0.113.9"

    event = await events.wait_for("media.ingest.connected", lambda d: d["ingestSessionId"] == session_id)
    assert event["data"]["channelId"] == "chan-1"
    assert event["data"]["provider"] == "local"
    # the node holding the session is in its URL: the gateway routes /hls/<node>/ to that node
    assert event["data"]["hlsUrl"] == f"/hls/ingest-0/{session_id}/index.m3u8"
    assert event["source"] == "media-gateway"
    assert not any(KEY.encode() in raw for raw in events.raw)


async def test_refused_key_is_403_and_publishes_nothing(rtmp, channels, outbox_count):
    r = await rtmp("publish", "sk_unknown_key_0123456789")
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert len(channels.calls) == 1
    assert await outbox_count("media.ingest.connected") == 0


@pytest.mark.parametrize("key", ["", "a" * 129, "../../etc/passwd", "live/other", "key with space", "k\x00",
                                 "%2e%2e%2fx", "ключ", "a.b"])
async def test_malformed_keys_are_refused_without_asking_channels(rtmp, channels, key):
    r = await rtmp("publish", key)
    assert r.status_code == 403
    assert channels.calls == []


async def test_a_128_character_key_is_still_asked_about(rtmp, channels):
    key = "a" * 128
    channels.keys[key] = "chan-long"
    r = await rtmp("publish", key)
    assert r.status_code == 302


async def test_no_channels_service_refuses(rtmp, outbox_count):
    r = await rtmp("publish", KEY)  # nobody answers channels.ingest.authorize
    assert r.status_code == 403
    assert await outbox_count("media.ingest.connected") == 0


async def test_slow_channels_service_times_out_and_refuses(rtmp, channels):
    channels.keys[KEY] = "chan-1"
    channels.delay = 2.5  # the app waits 1 s in these tests
    r = await rtmp("publish", KEY)
    assert r.status_code == 403


async def test_encoder_query_string_cannot_override_the_name(rtmp, channels):
    channels.keys[KEY] = "chan-1"
    # rtmp://host/live/bad?name=<valid key>: nginx-rtmp appends the args after its own fields
    r = await rtmp("publish", "bad_guess", extra=f"name={KEY}&app=live")
    assert r.status_code == 403
    assert [c.stream_key.get_secret_value() for c in channels.calls] == ["bad_guess"]


async def test_publish_to_another_application_is_refused(rtmp, channels):
    channels.keys[KEY] = "chan-1"
    r = await rtmp("publish", KEY, app="src")
    assert r.status_code == 403
    assert channels.calls == []


async def test_publish_done_disconnects_once(rtmp, channels, events, outbox_count):
    channels.keys[KEY] = "chan-1"
    session_id = session_of((await rtmp("publish", KEY, clientid="21")).headers["location"])
    # nginx-rtmp repeats the published name (the key) and the connection's clientid
    assert (await rtmp("publish_done", KEY, clientid="21")).status_code == 204
    event = await events.wait_for("media.ingest.disconnected", lambda d: d["ingestSessionId"] == session_id)
    assert event["data"]["channelId"] == "chan-1"
    assert (await rtmp("publish_done", KEY, clientid="21")).status_code == 204
    assert await outbox_count("media.ingest.disconnected") == 1


async def test_publish_done_of_another_connection_changes_nothing(rtmp, channels, outbox_count):
    channels.keys[KEY] = "chan-1"
    await rtmp("publish", KEY, clientid="31")
    await rtmp("publish_done", KEY, clientid="32")
    await rtmp("publish_done", "some_other_key", clientid="31")
    assert await outbox_count("media.ingest.disconnected") == 0


async def test_update_allows_a_live_session_and_stops_an_ended_one(rtmp, channels):
    channels.keys[KEY] = "chan-1"
    await rtmp("publish", KEY, clientid="41")
    assert (await rtmp("update_publish", KEY, clientid="41", time="10")).status_code == 204
    await rtmp("publish_done", KEY, clientid="41")
    r = await rtmp("update_publish", KEY, clientid="41", time="20")
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_update_of_an_unknown_publisher_is_refused(rtmp):
    assert (await rtmp("update_publish", KEY, clientid="99")).status_code == 404


async def test_update_of_the_internal_relay_is_always_allowed(rtmp):
    # the relay push and the transcoder play the stream: on_update reports them as update_play
    relay_name = hashlib.md5(b"whatever").hexdigest()
    assert (await rtmp("update_play", relay_name, app="", clientid="3")).status_code == 204


async def test_a_new_publish_supersedes_the_open_one(rtmp, channels, events):
    channels.keys[KEY] = "chan-1"
    first = session_of((await rtmp("publish", KEY, clientid="51")).headers["location"])
    second = session_of((await rtmp("publish", KEY, clientid="52")).headers["location"])
    assert first != second
    await events.wait_for("media.ingest.disconnected", lambda d: d["ingestSessionId"] == first)
    await events.wait_for("media.ingest.connected", lambda d: d["ingestSessionId"] == second)
    # the old connection is stopped at its next update, the new one continues
    assert (await rtmp("update_publish", KEY, clientid="51")).status_code == 403
    assert (await rtmp("update_publish", KEY, clientid="52")).status_code == 204
    types = [(e["type"], e["data"]["ingestSessionId"]) for e in events.items]
    assert types.index(("media.ingest.disconnected", first)) < types.index(("media.ingest.connected", second))


async def test_oversized_callback_body_is_413(client):
    r = await client.post("/hooks/rtmp/publish", content=b"name=" + b"a" * 20000,
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


@pytest.mark.parametrize("call", ["publish", "publish_done", "update_publish", "record_done"])
async def test_a_nul_in_any_field_is_an_unknown_publisher_not_a_500(client, call):
    """An encoder's URL may carry %00; PostgreSQL refuses NUL in a text it compares (it was a 500
    the OpenAPI fuzzer found)."""
    path = {"publish": "publish", "publish_done": "publish_done", "update_publish": "update",
            "record_done": "record_done"}[call]
    r = await client.post(f"/hooks/rtmp/{path}", content=f"call={call}&app=src&clientid=%00&name=%00&addr=%00",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code < 500
    assert RtmpCallback.parse(b"name=a%00b&app=%00").name == "a\ufffdb"


def test_callback_parsing_keeps_nginx_fields_and_hides_the_name():
    cb = RtmpCallback.parse(b"app=live&clientid=5&call=publish&name=secret_key&type=live&name=x&clientid=6")
    assert (cb.app, cb.client_id, cb.name, cb.call) == ("live", "5", "secret_key", "publish")
    assert "secret_key" not in repr(cb)


async def test_silent_sessions_are_ended(make_client, channels, events, rtmp_body):
    """A lost on_publish_done (nginx or this service down) must not leave the channel live forever."""
    async with make_client(ingest_stale_seconds=1.0, liveness_poll_seconds=0.2) as client:
        async def post(call, name, **kw):
            path = "publish" if call == "publish" else "update"
            return await client.post(f"/hooks/rtmp/{path}", content=rtmp_body(call, name, **kw),
                                     headers={"content-type": "application/x-www-form-urlencoded"})

        channels.keys[KEY] = "chan-silent"
        channels.keys["sk_still_reporting_0001"] = "chan-alive"
        silent = session_of((await post("publish", KEY, clientid="101")).headers["location"])
        alive = session_of((await post("publish", "sk_still_reporting_0001", clientid="102")).headers["location"])
        for _ in range(12):  # nginx-rtmp's on_update keeps the second one fresh
            assert (await post("update_publish", "sk_still_reporting_0001", clientid="102")).status_code == 204
            await asyncio.sleep(0.25)
        event = await events.wait_for("media.ingest.disconnected", lambda d: d["ingestSessionId"] == silent)
        assert event["data"]["channelId"] == "chan-silent"
        assert not [e for e in events.of_type("media.ingest.disconnected") if e["data"]["ingestSessionId"] == alive]
