"""The persister's idempotency, kill -9 of the `persist` process, and a NATS restart."""

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import nats
import psycopg
import pytest
from chat_service.messages.persister import Persister, write_batch
from chat_service.messages.service import ChatService, decode_room_event
from contracts.catalog import subject_for
from contracts.envelope import make_event
from contracts.events.chat import ChatMessage, ChatUser
from contracts.subjects import CHAT_STREAM
from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import NatsServer
from servicekit.db import Database
from servicekit.messaging import ensure_streams
from sqlalchemy import text


def _message(channel_id: str, n: int) -> tuple[str, bytes]:
    mid = str(uuid.uuid4())
    message = ChatMessage(id=mid, seq=None, channel_id=channel_id, stream_id=None,
                          user=ChatUser(id="u1", username="u1", display_name="U1", badges=[]),
                          content=f"message {n}", created_at=datetime.now(UTC), deleted_at=None)
    return mid, make_event("chat.message", message, source="chat", id=mid).to_json_bytes()


_conns: dict[str, psycopg.AsyncConnection] = {}


async def _count(db_url: str) -> tuple[int, int]:
    # one open connection: polling must be fast enough to catch the persister mid-way
    conn = _conns.get(db_url)
    if conn is None or conn.closed:
        conn = _conns[db_url] = await psycopg.AsyncConnection.connect(
            db_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)
    row = await (await conn.execute("SELECT count(*), count(DISTINCT id) FROM chat_messages")).fetchone()
    return row[0], row[1]


@pytest.mark.settings(persister_enabled=False)
async def test_the_same_batch_twice_writes_each_message_once(chat, make_user, make_channel, nc, db):
    user = make_user()
    room = await make_channel(make_user())
    sent = [await chat.send(user_id=user.id, username=user.username, channel_id=room, content=f"m{n}")
            for n in range(5)]
    await chat.delete(actor_id=user.id, message_id=sent[2].id)
    js = nc.jetstream()
    events = [decode_room_event(await js.get_msg(CHAT_STREAM.name, s.seq)) for s in sent]
    info = await js.stream_info(CHAT_STREAM.name)
    events.append(decode_room_event(await js.get_msg(CHAT_STREAM.name, info.state.last_seq)))
    assert await write_batch(chat.db, events) == 5
    assert await write_batch(chat.db, events) == 0  # redelivered batch: nothing new
    async with db() as session:
        rows = (await session.exec(text("SELECT id::text, seq, deleted_at FROM chat_messages ORDER BY seq"))).all()
    assert [r[0] for r in rows] == [s.id for s in sent]
    assert [r[1] for r in rows] == [s.seq for s in sent]
    assert [r[2] is not None for r in rows] == [False, False, True, False, False]


@pytest.mark.settings(persister_enabled=False)
async def test_a_redelivered_fetch_is_harmless(chat, make_user, make_channel, nc, db):
    """A persister that died after its commit but before its acks gets the batch again."""
    user = make_user()
    room = await make_channel(make_user())
    for n in range(4):
        await chat.send(user_id=user.id, username=user.username, channel_id=room, content=f"m{n}")
    js = nc.jetstream()
    first = Persister(chat.db, js, batch=10, fetch_timeout=0.5)
    await first.subscribe()
    msgs = await first._sub.fetch(10, timeout=1)
    await write_batch(chat.db, [decode_room_event(m) for m in msgs])  # committed, never acked
    for m in msgs:
        await m.nak()  # what an expired ack_wait does, without waiting 30 s
    second = Persister(chat.db, js, batch=10, fetch_timeout=0.5)
    await second.subscribe()
    assert await second.run_once() == 4
    async with db() as session:
        assert (await session.exec(text("SELECT count(*) FROM chat_messages"))).one()[0] == 4


def _batches_written() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("chat_persister_batch_size_count") or 0.0


@pytest.mark.settings(persister_enabled=False)
async def test_a_slow_room_is_persisted_in_batches_not_one_transaction_per_message(chat, make_user, make_channel,
                                                                                     nc, db):
    user = make_user()
    room = await make_channel(make_user())
    persister = Persister(chat.db, nc.jetstream(), batch=500, fetch_timeout=0.5, linger=0.3)
    before = _batches_written()
    running = asyncio.create_task(persister.run())
    try:
        for n in range(12):  # 20 msg/s: every fetch would find one message
            await chat.send(user_id=user.id, username=user.username, channel_id=room, content=f"m{n}")
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            async with db() as session:
                if (await session.exec(text("SELECT count(*) FROM chat_messages"))).one()[0] == 12:
                    break
            await asyncio.sleep(0.05)
    finally:
        persister.stop()
        await asyncio.wait_for(running, 5)
    async with db() as session:
        assert (await session.exec(text("SELECT count(*) FROM chat_messages"))).one()[0] == 12
    assert _batches_written() - before <= 6, "the persister wrote almost a transaction per message"


@pytest.mark.settings(persister_enabled=False)
async def test_a_deletion_persisted_before_its_message_still_deletes_it(chat, make_user, make_channel, nc, db):
    """Issue 14 item 3: two persisters (or a redelivered batch) can commit the batch holding a
    deletion before the batch holding the message. The deletion must not be lost then."""
    user = make_user()
    room = await make_channel(make_user())
    kept = await chat.send(user_id=user.id, username=user.username, channel_id=room, content="kept")
    gone = await chat.send(user_id=user.id, username=user.username, channel_id=room, content="gone")
    await chat.delete(actor_id=user.id, message_id=gone.id)
    js = nc.jetstream()
    last = (await js.stream_info(CHAT_STREAM.name)).state.last_seq
    messages = [decode_room_event(await js.get_msg(CHAT_STREAM.name, s.seq)) for s in (kept, gone)]
    deletion = decode_room_event(await js.get_msg(CHAT_STREAM.name, last))
    assert deletion[1] == "chat:deleted"
    await write_batch(chat.db, [deletion])  # the later batch commits first
    await write_batch(chat.db, messages)
    for _ in range(2):  # and a redelivery of the deletion changes nothing
        async with db() as session:
            rows = (await session.exec(text("SELECT id::text, deleted_at FROM chat_messages ORDER BY seq"))).all()
        assert [(r[0], r[1] is not None) for r in rows] == [(kept.id, False), (gone.id, True)]
        assert [m["id"] for m in await chat.history(room)] == [kept.id]
        await write_batch(chat.db, [deletion])


async def test_concurrent_batches_never_lose_a_deletion(chat_db_url):
    """The same race with both transactions open at once (two persisters): whichever commits
    first, the message ends up deleted."""
    db = Database(chat_db_url, pool_size=4)
    try:
        for deletion_first in (True, False):
            mid = str(uuid.uuid4())
            now = datetime.now(UTC).isoformat()
            message = (10, "chat:message", {"id": mid, "channelId": "race", "streamId": None, "content": "x",
                                            "user": {"id": "u", "username": "u", "displayName": "U", "badges": []},
                                            "createdAt": now, "deletedAt": None})
            deletion = (11, "chat:deleted", {"messageId": mid, "channelId": "race", "seq": 11, "deletedAt": now})
            first, second = ([deletion], [message]) if deletion_first else ([message], [deletion])
            await asyncio.gather(write_batch(db, first), write_batch(db, second))
            async with db.session() as session:
                row = (await session.exec(text(f"SELECT deleted_at FROM chat_messages WHERE id = '{mid}'"))).one()
            assert row[0] is not None, f"deletion lost (deletion first: {deletion_first})"
    finally:
        await db.dispose()


async def test_kill_9_of_the_persist_process_loses_and_duplicates_nothing(test_servers, chat_db_url, nats_url,
                                                                         redis_url):
    n = 2000
    nc = await nats.connect(nats_url)
    root = Path(tempfile.mkdtemp(prefix="chat-persist-"))
    sup = Supervisor(root / "logs")
    env = {"DATABASE_URL": chat_db_url, "NATS_URL": nats_url, "REDIS_URL": redis_url,
           "PERSISTER_BATCH": "50", "LOG_LEVEL": "WARNING",
           # the dead process's unacked batch comes back after this
           "PERSISTER_ACK_WAIT_SECONDS": "1"}
    argv = [sys.executable, "-m", "chat_service", "persist"]
    try:
        js = nc.jetstream()
        await ensure_streams(js, [CHAT_STREAM])
        ids = set()
        acks = []
        for i in range(n):
            mid, data = _message("room-kill", i)
            ids.add(mid)
            acks.append(js.publish(subject_for("chat.message", channelId="room-kill"), data,
                                   headers={"Nats-Msg-Id": mid}))
            if len(acks) == 200:
                await asyncio.gather(*acks)
                acks = []
        await asyncio.gather(*acks)

        child = sup.start("persist-1", argv, env=env)
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline:
            count, _ = await _count(chat_db_url)
            if count > 0:
                break
            await asyncio.sleep(0.01)
        sup.kill(child)  # kill -9 mid-way
        killed_at, _ = await _count(chat_db_url)
        assert 0 < killed_at < n, f"the kill did not land mid-way ({killed_at} of {n} written)"

        child = sup.start("persist-2", argv, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            count, distinct = await _count(chat_db_url)
            if count >= n:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything still arriving would be a duplicate
        count, distinct = await _count(chat_db_url)
        assert (count, distinct) == (n, n)
        db = Database(chat_db_url, pool_size=1)
        async with db.session() as session:
            stored = {r[0] for r in (await session.exec(text("SELECT id::text FROM chat_messages"))).all()}
        await db.dispose()
        assert stored == ids
        sup.stop(child)
        assert child.popen.returncode is not None
    finally:
        sup.stop_all()
        await nc.close()
        conn = _conns.pop(chat_db_url, None)
        if conn is not None:
            await conn.close()
        shutil.rmtree(root, ignore_errors=True)


async def test_acked_messages_survive_a_nats_kill_9(test_servers, chat_db_url, redis_url, jwks, make_user):
    """A private nats-server (the shared one stays up): every send that was acked is in the
    stream after the server was killed with SIGKILL and started again on the same store."""
    from chat_service.config import Settings
    from chat_service.main import create_app
    from contracts.events.channels import Channel as ChannelPayload

    root = Path(tempfile.mkdtemp(prefix="chat-nats-"))
    sup = Supervisor(root / "logs")
    server = NatsServer(free_port(), free_port(), root / "js")
    try:
        server.start(sup, "private-nats")
        settings = Settings(database_url=chat_db_url, nats_url=server.url, redis_url=redis_url,
                            persister_enabled=False)
        app = create_app(settings, configure_process=False, jwks=jwks)
        owner, user = make_user(), make_user()
        channel_id = str(uuid.uuid4())
        async with app.router.lifespan_context(app):
            chat: ChatService = app.state.runtime.chat
            js = app.state.runtime.js
            event = make_event("channel.created", ChannelPayload(
                id=channel_id, slug="k9", name="K9", description=None, category=None, tags=[], avatar=None,
                banner=None, is_public=True, owner_id=owner.id), source="channels")
            await js.publish("channel.created", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
            for _ in range(200):
                try:
                    await chat.resolve_room(channel_id=channel_id)
                    break
                except LookupError:
                    await asyncio.sleep(0.05)
            acked = [await chat.send(user_id=user.id, username=user.username, channel_id=channel_id,
                                     content=f"m{i}", nonce=f"n{i}") for i in range(15)]
            sup.kill(server.child)
            server.start(sup, "private-nats-2")
            # the app's connection reconnects on its own; JetStream answers once it recovered
            for _ in range(100):
                try:
                    await js.stream_info(CHAT_STREAM.name, )
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            events, recovered = await chat.events_since(channel_id, 0)
            assert recovered
            assert [body["id"] for _, _, body in events] == [m.id for m in acked]
            after = await chat.send(user_id=user.id, username=user.username, channel_id=channel_id,
                                    content="after the restart")
            assert after.seq > acked[-1].seq
    finally:
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)
