"""Issue 14 item 11: a send whose outcome is unknown says so, and REST sends are idempotent by
an `Idempotency-Key` header as socket sends are by their nonce.

The unknown outcome is produced for real: a private nats-server is stopped (SIGSTOP) while a
publish is on its way, so the publish times out; on SIGCONT the server reads it and stores it.
The sender was told "unknown, retry with the same nonce", and the retry answers the stored
message: one message in the stream, never two.
"""

import asyncio
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from chat_service.config import Settings
from chat_service.main import create_app
from chat_service.messages.service import ChatRejected, ChatService
from contracts.envelope import make_event
from contracts.events.channels import Channel as ChannelPayload
from contracts.subjects import CHAT_STREAM
from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import NatsServer


async def _app_on_private_nats(chat_db_url, redis_url, jwks, owner_id: str, root: Path, sup: Supervisor):
    server = NatsServer(free_port(), free_port(), root / "js").start(sup, "private-nats")
    settings = Settings(database_url=chat_db_url, nats_url=server.url, redis_url=redis_url,
                        persister_enabled=False, publish_timeout_seconds=1.0)
    app = create_app(settings, configure_process=False, jwks=jwks)
    return server, app


async def _channel(app, owner_id: str) -> str:
    chat: ChatService = app.state.runtime.chat
    channel_id = str(uuid.uuid4())
    event = make_event("channel.created", ChannelPayload(
        id=channel_id, slug="unknown", name="U", description=None, category=None, tags=[], avatar=None,
        banner=None, is_public=True, owner_id=owner_id), source="channels")
    await app.state.runtime.js.publish("channel.created", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
    for _ in range(200):
        try:
            await chat.resolve_room(channel_id=channel_id)
            return channel_id
        except LookupError:
            await asyncio.sleep(0.05)
    raise AssertionError("the channel never reached chat's replica")


async def _stored(js, channel_id: str) -> list[str]:
    for _ in range(100):  # the resumed server answers after a moment
        try:
            info = await js.stream_info(CHAT_STREAM.name)
            break
        except Exception:
            await asyncio.sleep(0.1)
    ids = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        raw = await js.get_msg(CHAT_STREAM.name, seq)
        if raw.subject == f"chat.message.{channel_id}":
            ids.append(raw.headers["Nats-Msg-Id"])
    return ids


async def test_a_timed_out_send_is_unknown_and_the_retry_answers_the_stored_message(
        test_servers, chat_db_url, redis_url, jwks, make_user, assert_problem):
    root = Path(tempfile.mkdtemp(prefix="chat-unknown-"))
    sup = Supervisor(root / "logs")
    owner, user = make_user(), make_user()
    try:
        server, app = await _app_on_private_nats(chat_db_url, redis_url, jwks, owner.id, root, sup)
        async with app.router.lifespan_context(app):
            chat: ChatService = app.state.runtime.chat
            channel_id = await _channel(app, owner.id)
            pid = server.child.popen.pid

            # the service: ChatRejected with code "unknown" (the edge answers it as chat:error)
            os.kill(pid, signal.SIGSTOP)
            try:
                with pytest.raises(ChatRejected) as refused:
                    await chat.send(user_id=user.id, username=user.username, channel_id=channel_id,
                                    content="socket", nonce="n-socket")
            finally:
                os.kill(pid, signal.SIGCONT)
            assert refused.value.code == "unknown" and refused.value.retry_after
            again = await chat.send(user_id=user.id, username=user.username, channel_id=channel_id,
                                    content="socket", nonce="n-socket")

            # REST: 503 with a type saying the outcome is unknown
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as client:
                body = {"channelId": channel_id, "content": "rest", "nonce": "n-rest"}
                os.kill(pid, signal.SIGSTOP)
                try:
                    r = await client.post("/api/messages", headers=user.headers, json=body)
                finally:
                    os.kill(pid, signal.SIGCONT)
                problem = assert_problem(r, 503)
                assert problem["type"] == "urn:streamplatform:chat:unknown" and r.headers["Retry-After"]
                retried = await client.post("/api/messages", headers=user.headers, json=body)
                assert retried.status_code == 201, retried.text

            assert await _stored(app.state.runtime.js, channel_id) == [again.id, retried.json()["id"]]
    finally:
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)


async def test_rest_sends_are_idempotent_by_the_idempotency_key_header(client, make_user, make_channel,
                                                                       assert_problem):
    user = make_user()
    channel_id = await make_channel(make_user())

    async def send(content, **headers):
        return await client.post("/api/messages", headers={**user.headers, **headers},
                                 json={"channelId": channel_id, "content": content})

    first = await send("once", **{"Idempotency-Key": "key-1"})
    assert first.status_code == 201, first.text
    retry = await send("once", **{"Idempotency-Key": "key-1"})
    assert retry.status_code == 201 and (retry.json()["id"], retry.json()["seq"]) == \
        (first.json()["id"], first.json()["seq"])
    other = await send("twice", **{"Idempotency-Key": "key-2"})
    assert other.json()["id"] != first.json()["id"]
    # the header is the nonce: the same key as a body nonce is the same message
    r = await client.post("/api/messages", headers=user.headers,
                          json={"channelId": channel_id, "content": "once", "nonce": "key-1"})
    assert r.json()["id"] == first.json()["id"]
    # without either, every POST is a new message
    a, b = await send("plain"), await send("plain")
    assert a.json()["id"] != b.json()["id"]
    assert_problem(await send("x", **{"Idempotency-Key": "k" * 101}), 422)
    r = await client.post("/api/messages", headers={**user.headers, "Idempotency-Key": "key-3"},
                          json={"channelId": channel_id, "content": "x", "nonce": "other"})
    assert_problem(r, 422)


async def test_a_failure_mid_batch_fails_exactly_the_affected_sends(
        test_servers, chat_db_url, redis_url, jwks, make_user):
    """Sends of one loop turn share one Valkey pipeline (issue 11). A command that fails for one
    send (Valkey), or a publish JetStream refuses (a message over the stream's size limit), fails
    that send alone: nothing it did not store is acked, nothing acked is missing from the stream,
    and the failed sends' allowance is given back (their retries pass)."""
    from chat_service.messages.service import ChatUnavailable

    root = Path(tempfile.mkdtemp(prefix="chat-batch-"))
    sup = Supervisor(root / "logs")
    owner, users = make_user(), [make_user() for _ in range(8)]
    try:
        server, app = await _app_on_private_nats(chat_db_url, redis_url, jwks, owner.id, root, sup)
        async with app.router.lifespan_context(app):
            chat: ChatService = app.state.runtime.chat
            js = app.state.runtime.js
            channel_id = await _channel(app, owner.id)
            batches = []
            run = chat._redis._run

            async def counted(items):
                batches.append(len(items))
                return await run(items)

            chat._redis._run = counted

            async def send_all(contents):
                return await asyncio.gather(*(
                    chat.send(user_id=u.id, username=u.username, channel_id=channel_id, content=c, nonce=f"{i}-{c[:8]}")
                    for i, (u, c) in enumerate(zip(users, contents, strict=True))), return_exceptions=True)

            # Valkey: user 3's rate-limit window is not a counter, so only its script fails
            redis = app.state.runtime.redis
            poisoned = f"chat:rl:{channel_id}:{users[3].id}"
            await redis.hset(poisoned, "not", "a counter")
            results = await send_all([f"valkey {n}" for n in range(8)])
            assert batches == [8], batches  # one pipeline for the whole turn
            assert isinstance(results[3], ChatUnavailable)
            acked = [r for n, r in enumerate(results) if n != 3]
            assert all(r.seq for r in acked)
            await redis.delete(poisoned)
            await redis.script_flush()  # Valkey forgot the script (restarted): EVALSHA falls back to EVAL
            again = await send_all([f"again {n}" for n in range(8)])
            assert all(r.seq for r in again), again
            acked += again

            # JetStream: the stream refuses messages over 700 bytes; the long sends fail alone
            info = await js.stream_info(CHAT_STREAM.name)
            info.config.max_msg_size = 700
            await js.update_stream(info.config)
            contents = ["short"] * 8
            for n in (1, 4, 6):
                contents[n] = "long " * 90
            results = await send_all(contents)
            for n, result in enumerate(results):
                if contents[n] == "short":
                    assert result.seq, result
                    acked.append(result)
                else:
                    assert isinstance(result, ChatUnavailable), result
            assert await _stored(js, channel_id) == [m.id for m in acked]

            # the refused sends spent no allowance and left no hint: their retries store them
            info.config.max_msg_size = -1
            await js.update_stream(info.config)
            retried = [await chat.send(user_id=users[n].id, username="u", channel_id=channel_id,
                                       content=contents[n], nonce=f"{n}-long lon") for n in (1, 4, 6)]
            assert await _stored(js, channel_id) == [m.id for m in acked + retried]
    finally:
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)
