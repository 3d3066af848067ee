"""The chat WebSocket protocol of API.md, end to end through a real edge (fake core)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from _edgeclient import HandshakeFailed, connect
from chat_service.edge.core import ChatRejected


async def test_join_send_ack_and_fan_out(start_edge, fake_chat, client, make_user):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    ada = make_user("ada")
    sender = await client(edge, ada.token)
    reader = await client(edge)  # anonymous: reads only
    for c in (sender, reader):
        c.send({"type": "chat:join", "channelId": room.channel_id})
        assert (await c.expect("chat:history"))["messages"] == []

    sender.send({"type": "chat:send", "content": " hello ", "nonce": "n1"})
    ack = await sender.expect("chat:ack")
    assert ack["nonce"] == "n1" and ack["seq"] >= 1 and ack["id"]
    for c in (sender, reader):
        got = await c.expect("chat:message")
        assert got["message"]["id"] == ack["id"] and got["message"]["seq"] == ack["seq"]
        assert got["message"]["content"] == "hello" and got["message"]["user"]["id"] == ada.id

    reader.send({"type": "chat:send", "content": "hi", "nonce": "x"})
    error = await reader.expect("chat:error")
    assert error["code"] == "unauthorized" and error["nonce"] == "x"

    reader.send({"type": "ping"})
    await reader.expect("pong")


async def test_join_by_stream_id_and_unknown_room(start_edge, fake_chat, client):
    room = fake_chat.add_room(stream_id="s-1")
    edge = await start_edge(fake_chat)
    c = await client(edge)
    c.send({"type": "chat:join", "streamId": "s-1"})
    await c.expect("chat:history")
    assert edge.rooms.keys() == {room.channel_id}
    c.send({"type": "chat:join", "channelId": "nope"})
    assert (await c.expect("chat:error"))["code"] == "invalid"
    c.send({"type": "chat:join", "channelId": "a.b"})
    assert (await c.expect("chat:error"))["code"] == "invalid"
    c.send({"type": "chat:join", "channelId": room.channel_id, "since": "3"})
    assert (await c.expect("chat:error"))["code"] == "invalid"


async def test_bad_frames_answer_invalid(start_edge, fake_chat, client):
    edge = await start_edge(fake_chat)
    c = await client(edge)
    c.send_raw(b"not json")
    assert (await c.expect("chat:error"))["code"] == "invalid"
    c.send({"type": "chat:nonsense"})
    assert (await c.expect("chat:error"))["code"] == "invalid"
    c.send({"type": "chat:send", "content": "x"})  # not signed in, no room
    assert (await c.expect("chat:error"))["code"] == "unauthorized"


async def test_rejections_from_the_core_come_back_as_chat_error(start_edge, fake_chat, client, make_user):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    c = await client(edge, make_user().token)
    c.send({"type": "chat:join", "channelId": room.channel_id})
    await c.expect("chat:history")
    fake_chat.reject = ChatRejected("slow_mode", "Slow mode: wait.", retry_after=3.0)
    c.send({"type": "chat:send", "content": "x", "nonce": "n"})
    error = await c.expect("chat:error")
    assert error == {"type": "chat:error", "code": "slow_mode", "message": "Slow mode: wait.", "nonce": "n",
                     "retryAfter": 3.0}


async def test_bad_token_is_unauthorized(start_edge, fake_chat, client, mint):
    edge = await start_edge(fake_chat)
    c = await client(edge, "garbage")
    assert (await c.expect("chat:error"))["code"] == "unauthorized"
    c2 = await client(edge, mint("u1", "u1", exp=1))
    assert (await c2.expect("chat:error"))["code"] == "unauthorized"


async def test_frames_over_4_kib_close_1009(start_edge, fake_chat, client):
    edge = await start_edge(fake_chat)
    c = await client(edge)
    c.send({"type": "ping", "pad": "x" * 5000})
    code, _ = await asyncio.wait_for(c.closed, 5)
    assert code == 1009
    ok = await client(edge)
    ok.send({"type": "ping", "pad": "x" * 3900})
    await ok.expect("pong")


async def test_origin_allowlist(start_edge, fake_chat):
    edge = await start_edge(fake_chat)
    with pytest.raises(HandshakeFailed) as refused:
        await connect("127.0.0.1", edge.port, origin="https://evil.example")
    assert refused.value.status == 403
    good = await connect("127.0.0.1", edge.port, origin="http://localhost:8080")
    good.send({"type": "ping"})
    await good.expect("pong")
    good.abort()


async def test_too_many_frames_close_1008(start_edge, fake_chat, client):
    edge = await start_edge(fake_chat, client_frames_per_second=1, client_frames_burst=5)
    c = await client(edge)
    for _ in range(10):
        c.send({"type": "ping"})
    code, _ = await asyncio.wait_for(c.closed, 5)
    assert code == 1008


async def test_health_ready_and_metrics(start_edge, fake_chat):
    edge = await start_edge(fake_chat)
    base = f"http://127.0.0.1:{edge.port}"
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{base}/healthz")).status_code == 200
        assert (await http.get(f"{base}/readyz")).json()["status"] == "ok"
        metrics = (await http.get(f"{base}/metrics")).text
        for name in ("chat_edge_connections", "chat_edge_rooms", "chat_deliveries_total",
                     "chat_frames_sent_total", "chat_fanout_latency_seconds",
                     "chat_slow_consumer_disconnects_total"):
            assert name in metrics
        missing = await http.get(f"{base}/nope")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


async def _signed_in_member(edge, client, channel_id, token):
    c = await client(edge, token)
    c.send({"type": "chat:join", "channelId": channel_id})
    await c.expect("chat:history")
    return c


async def test_a_socket_whose_token_expires_becomes_a_reader(start_edge, fake_chat, client, make_user, mint):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    ada, bob = make_user("ada"), make_user("bob")
    short = mint(ada.id, "ada", exp=int(time.time()) + 2)
    c = await _signed_in_member(edge, client, room.channel_id, short)
    c.send({"type": "chat:send", "content": "before", "nonce": "n1"})
    await c.expect("chat:ack", nonce="n1")
    expired = await c.expect("chat:error", timeout=10)  # pushed when the token runs out
    assert expired["code"] == "unauthorized" and "nonce" not in expired
    c.send({"type": "chat:send", "content": "after", "nonce": "n2"})
    assert (await c.expect("chat:error", nonce="n2"))["code"] == "unauthorized"
    # still a reader of the room
    other = await _signed_in_member(edge, client, room.channel_id, bob.token)
    other.send({"type": "chat:send", "content": "for readers too", "nonce": "b1"})
    while (await c.expect("chat:message"))["message"]["content"] != "for readers too":
        pass
    # and a fresh token signs it in again
    c.send({"type": "auth", "token": ada.token})
    c.send({"type": "chat:send", "content": "back", "nonce": "n3"})
    await c.expect("chat:ack", nonce="n3")


async def test_a_fresh_auth_before_expiry_keeps_the_socket_signed_in(start_edge, fake_chat, client, make_user,
                                                                     mint):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    ada, sentinel = make_user("ada"), make_user("sentinel")
    exp = int(time.time()) + 2
    kept = await _signed_in_member(edge, client, room.channel_id, mint(ada.id, "ada", exp=exp))
    kept.send({"type": "auth", "token": ada.token})  # the client refreshed its token in time
    # a socket whose token runs out at the same second: once it hears so, the expiry has passed
    lapsed = await _signed_in_member(edge, client, room.channel_id, mint(sentinel.id, "sentinel", exp=exp))
    assert (await lapsed.expect("chat:error", timeout=10))["code"] == "unauthorized"
    kept.send({"type": "chat:send", "content": "still me", "nonce": "k1"})
    await kept.expect("chat:ack", nonce="k1")
    assert not [e for e in kept.seen + kept.drain() if e.get("type") == "chat:error"]


async def test_a_send_builds_no_span_while_no_span_is_exported(start_edge, fake_chat, client, make_user,
                                                               monkeypatch):
    """The SDK builds a span whether or not anything exports it (~13 us a send); the edge's own
    `chat:send` span exists only where spans go somewhere (tests/e2e/test_one_trace.py)."""
    from chat_service.edge import server

    class NoSpans:
        def start_as_current_span(self, *args, **kwargs):
            raise AssertionError("a span was built with no exporter")

    monkeypatch.setattr(server, "_tracer", NoSpans())
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    sender = await client(edge, make_user("ada").token)
    sender.send({"type": "chat:join", "channelId": room.channel_id})
    await sender.expect("chat:history")
    sender.send({"type": "chat:send", "content": "hello", "nonce": "n1"})
    assert (await sender.expect("chat:ack"))["nonce"] == "n1"
