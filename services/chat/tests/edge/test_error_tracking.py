"""The chat edge's own entry point (`python -m chat_service edge` -> run_edge) starts error
tracking: a frame that fails unexpectedly (the socket closes 1011) reaches the tracker as a
`chat-edge` event, without the sender's token or anything shaped like a stream key."""

from __future__ import annotations

import asyncio
import secrets

import uvloop
from chat_service.edge import main as edge_main
from chat_service.edge.config import EdgeSettings


async def test_the_edge_entry_point_reports_a_failed_frame_without_secrets(
        start_edge, fake_chat, client, make_user, envelope_receiver, monkeypatch, nats_url_for, redis_url):
    import sentry_sdk

    # run_edge as `python -m chat_service edge` calls it, minus taking over the process: the log
    # handlers stay pytest's and the loop it would run is not started
    started = []
    monkeypatch.setattr(edge_main, "configure_logging", lambda *args, **kwargs: None)
    monkeypatch.setattr(uvloop, "run", lambda coro: (started.append(coro), coro.close()))
    settings = EdgeSettings(nats_url=nats_url_for("chat-edge"), redis_url=redis_url,
                            sentry_dsn=envelope_receiver.dsn, sentry_environment="test")
    assert edge_main.run_edge(settings) == 0 and started
    assert sentry_sdk.get_client().is_active()

    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    user = make_user()
    key = "live_" + secrets.token_urlsafe(32)
    c = await client(edge, user.token)
    c.send({"type": "chat:join", "channelId": room.channel_id})
    await c.expect("chat:history")
    fake_chat.reject = RuntimeError(f"store refused {user.token} with key {key}")
    c.send({"type": "chat:send", "content": f"my key: {key}", "nonce": "n-1"})
    code, _ = await asyncio.wait_for(c.closed, 5)
    assert code == 1011

    sentry_sdk.flush(timeout=5)
    event = envelope_receiver.wait_for(lambda e: e.get("logger") == "chat.edge")
    assert event["tags"]["service"] == "chat-edge"
    assert event["release"] == "chat-edge@0.1.0"
    assert event["environment"] == "test"
    assert event["exception"]["values"][-1]["value"] == "store refused [redacted] with key [redacted]"
    raw = envelope_receiver.raw()
    for secret in (user.token, user.token.rsplit(".", 1)[1], key):
        assert secret.encode() not in raw
