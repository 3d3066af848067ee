"""Issue 13 item 5: a chat edge needs no database.

A private PostgreSQL (the shared test server stays up for everyone else) holds the chat API's
database. With it stopped, an edge started afterwards still serves joins with history, acks sends
once JetStream stored them, and applies a ban at once: moderation state comes from the chat API's
KV snapshots and the core-NATS events, history from the chat API or the CHAT stream.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import nats
from chat_service.config import Settings
from chat_service.main import create_app
from contracts.catalog import subject_for
from contracts.envelope import make_event
from contracts.events.channels import Channel as ChannelPayload
from contracts.events.channels import ChannelBan, ChannelModerator
from contracts.subjects import CHAT_STREAM
from devstack.ports import free_port
from devstack.processes import StartupFailed, Supervisor
from devstack.servers import Postgres
from servicekit.db import upgrade

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "chat_service" / "migrations"


async def _join(c, channel_id):
    c.send({"type": "chat:join", "channelId": channel_id})
    return await c.expect("chat:history")


async def test_an_edge_serves_joins_history_sends_and_bans_with_postgres_stopped(
        nats_url, nats_url_for, redis_url, jwks, make_user, start_edge, client, eventually):
    root = Path(tempfile.mkdtemp(prefix="chat-nodb-"))
    sup = Supervisor(root / "logs")
    for attempt in range(3):  # a free port can be taken by another process before postgres binds it
        try:
            pg = Postgres(port=free_port(), data_dir=root / "pg", durable=False).start(sup, name=f"postgres-{attempt}")
            break
        except StartupFailed:
            if attempt == 2:
                raise
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        pg.create_database("chat")
        upgrade(MIGRATIONS, pg.url("chat"))
        settings = Settings(database_url=pg.url("chat"), nats_url=nats_url_for("chat"), redis_url=redis_url,
                            outbox_poll_seconds=0.2, persister_fetch_timeout_seconds=0.2)
        app = create_app(settings, configure_process=False, jwks=jwks)
        async with app.router.lifespan_context(app):
            chat = app.state.runtime.chat
            owner, mod, alice, troll = make_user("owner"), make_user("mod"), make_user("alice"), make_user("troll")
            channel_id = str(uuid.uuid4())

            async def publish(event_type, payload):
                env = make_event(event_type, payload, source="channels")
                await js.publish(subject_for(event_type), env.to_json_bytes(), headers={"Nats-Msg-Id": env.id})

            await publish("channel.created", ChannelPayload(
                id=channel_id, slug=f"c-{channel_id[:8]}", name="C", description=None, category=None, tags=[],
                avatar=None, banner=None, is_public=True, owner_id=owner.id))
            await publish("channel.moderator_added", ChannelModerator(channel_id=channel_id, user_id=mod.id))

            async def badges():
                try:
                    return await chat.badges(channel_id, mod.id)
                except LookupError:
                    return []
            await eventually(badges, lambda b: b == ["moderator"], what="the replica consumer")
            before = [await chat.send(user_id=alice.id, username="alice", channel_id=channel_id,
                                      content=f"before {i}", nonce=f"b{i}") for i in range(3)]

            sup.stop(pg.child)  # PostgreSQL is gone from here on
            assert not pg.child.alive()

            edge = await start_edge(None)  # no DATABASE_URL at all
            assert edge.runtime.db is None
            reader = await client(edge)
            history = await _join(reader, channel_id)
            assert [m["id"] for m in history["messages"]] == [m.id for m in before]

            sender = await client(edge, alice.token)
            await _join(sender, channel_id)
            sender.send({"type": "chat:send", "content": "during the outage", "nonce": "d1"})
            ack = await sender.expect("chat:ack")
            stored = await js.get_msg(CHAT_STREAM.name, ack["seq"])  # acked = in JetStream
            assert ack["id"].encode() in stored.data
            assert (await reader.expect("chat:message"))["message"]["id"] == ack["id"]

            # a moderator's badge comes from the KV snapshot the API wrote before the outage
            moderator = await client(edge, mod.token)
            await _join(moderator, channel_id)
            moderator.send({"type": "chat:send", "content": "mod here", "nonce": "m1"})
            await moderator.expect("chat:ack")
            assert (await reader.expect("chat:message"))["message"]["user"]["badges"] == ["moderator"]

            # a ban still applies at once (core NATS), with the replica consumer unable to write
            troll_socket = await client(edge, troll.token)
            await _join(troll_socket, channel_id)
            await publish("channel.user_banned", ChannelBan(channel_id=channel_id, user_id=troll.id, until=None,
                                                            reason="t"))
            assert (await troll_socket.expect("chat:error"))["code"] == "banned"
            troll_socket.send({"type": "chat:send", "content": "let me", "nonce": "t1"})
            assert (await troll_socket.expect("chat:error", nonce="t1"))["code"] == "banned"
    finally:
        await nc.close()
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)


async def test_a_channel_missing_from_the_bucket_is_filled_by_the_chat_api(chat_app, make_channel, make_user,
                                                                          start_edge, client):
    """A deployment that predates the bucket: the edge asks the API, which writes the snapshot."""
    from chat_service.moderation.snapshots import open_bucket

    channel_id = await make_channel(make_user("owner"))
    kv = await open_bucket(chat_app.state.runtime.js)
    await kv.purge(f"channel.{channel_id}")
    edge = await start_edge(None)
    reader = await client(edge)
    assert (await _join(reader, channel_id))["messages"] == []
    assert (await kv.get(f"channel.{channel_id}")).value


async def test_the_stream_fallback_reads_the_last_messages_of_a_busy_stream(nats_url, redis_url, jwks, start_edge):
    """History from the CHAT stream alone: the room's last messages, found behind thousands of
    other rooms' events and a deletion, without reading the stream from its start."""
    import asyncio
    from datetime import UTC, datetime

    from contracts.events.chat import ChatMessage, ChatMessageDeleted, ChatUser

    edge = await start_edge(None)
    js = edge.js
    room, other = uuid.uuid4().hex, uuid.uuid4().hex

    async def message(channel_id: str, n: int) -> str:
        mid = str(uuid.uuid4())
        body = ChatMessage(id=mid, seq=None, channel_id=channel_id, stream_id=None,
                           user=ChatUser(id="u", username="u", display_name="u", badges=[]),
                           content=f"m{n}", created_at=datetime.now(UTC), deleted_at=None)
        await js.publish(subject_for("chat.message", channelId=channel_id),
                         make_event("chat.message", body, source="chat", id=mid).to_json_bytes())
        return mid

    ids = [await message(room, n) for n in range(60)]
    deleted = ids[-5]
    await js.publish(subject_for("chat.deleted", channelId=room), make_event(
        "chat.deleted", ChatMessageDeleted(message_id=deleted, channel_id=room), source="chat").to_json_bytes())
    for batch in range(6):
        await asyncio.gather(*(message(other, batch * 500 + n) for n in range(500)))
    got = await edge.chat.stream_history(room, limit=50)
    assert [m["id"] for m in got] == [i for i in ids if i != deleted][-50:]
