"""Fan-out across edges, resume, slow consumers, bans, blocks and presence (fake core)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import nats
import orjson
from contracts.envelope import make_event, parse_event
from contracts.events.channels import ChannelBan
from contracts.events.users import UserBlock


async def _join(c, channel_id, **extra):
    c.send({"type": "chat:join", "channelId": channel_id, **extra})
    return await c.expect("chat:history")


async def test_a_message_sent_on_edge_a_reaches_edge_b_exactly_once(start_edge, fake_chat, client, make_user):
    room = fake_chat.add_room()
    a, b = await start_edge(fake_chat), await start_edge(fake_chat)
    sender = await client(a, make_user().token)
    readers = [await client(b) for _ in range(3)]
    for c in (sender, *readers):
        await _join(c, room.channel_id)
    for i in range(5):
        sender.send({"type": "chat:send", "content": f"m{i}", "nonce": f"n{i}"})
    acks = [await sender.expect("chat:ack", nonce=f"n{i}") for i in range(5)]
    await asyncio.sleep(0.3)  # anything extra (a duplicate) would have arrived by now
    for r in readers:
        got = [e["message"] for e in r.drain() + r.seen if e["type"] == "chat:message"]
        assert [m["id"] for m in got] == [a["id"] for a in acks]
        assert [m["content"] for m in got] == [f"m{i}" for i in range(5)]


async def test_events_of_a_tick_share_one_frame(start_edge, fake_chat, client, make_user):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat, tick_seconds=0.2)
    sender = await client(edge, make_user().token)
    reader = await client(edge, parse=True)
    for c in (sender, reader):
        await _join(c, room.channel_id)
    frames_before = reader.frames
    for i in range(10):
        await fake_chat.send(user_id="u", username="u", channel_id=room.channel_id, content=f"c{i}", nonce=None)
    for _ in range(10):
        await reader.expect("chat:message")
    # the first message flushes at once (quiet room), the other nine ride one or two tick frames
    assert reader.frames - frames_before <= 3


async def test_a_big_rooms_tick_grows_so_a_busy_room_sends_fewer_frames(start_edge, fake_chat, client):
    room = fake_chat.add_room()
    # a write budget of 10/s: two members make a 0.2 s tick (capped at max_tick_seconds), where the
    # base tick of 15 ms would flush each of these messages, 60 ms apart, in a frame of its own
    edge = await start_edge(fake_chat, tick_seconds=0.015, room_writes_per_second=10, max_tick_seconds=0.2)
    readers = [await client(edge, parse=True) for _ in range(2)]
    for c in readers:
        await _join(c, room.channel_id)
    frames_before = readers[0].frames
    for i in range(8):
        await fake_chat.send(user_id="u", username="u", channel_id=room.channel_id, content=f"c{i}", nonce=None)
        await asyncio.sleep(0.06)
    got = [(await readers[0].expect("chat:message"))["message"]["content"] for _ in range(8)]
    assert got == [f"c{i}" for i in range(8)]
    # 0.48 s of sending at one frame per 0.2 s tick: at most four frames (eight at the base tick)
    assert readers[0].frames - frames_before <= 4


def test_the_tick_grows_with_the_local_members_within_its_bounds():
    from chat_service.edge.config import EdgeSettings
    from chat_service.edge.rooms import tick_for

    s = EdgeSettings(tick_seconds=0.015, room_writes_per_second=25_000, max_tick_seconds=0.04)
    assert tick_for(100, s) == 0.015
    assert tick_for(1000, s) == 0.04
    assert tick_for(800, s) == 0.032
    assert tick_for(100_000, s) == 0.04
    # a base tick above the cap wins: the cap only limits the growth
    assert tick_for(10, EdgeSettings(tick_seconds=0.2, max_tick_seconds=0.04)) == 0.2


async def test_resume_with_since_gives_exactly_the_missed_events(start_edge, fake_chat, client, make_user):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    c = await client(edge)
    await _join(c, room.channel_id)
    first = await fake_chat.send(user_id="u", username="u", channel_id=room.channel_id, content="seen", nonce=None)
    await c.expect("chat:message")
    c.abort()
    missed = [await fake_chat.send(user_id="u", username="u", channel_id=room.channel_id, content=f"x{i}",
                                   nonce=None) for i in range(3)]
    deleted_seq = await fake_chat.delete(room.channel_id, missed[0].id)

    again = await client(edge)
    history = await _join(again, room.channel_id, since=first.seq)
    assert history["recovered"] is True
    assert [m["id"] for m in history["messages"]] == [m.id for m in missed]
    deleted = await again.expect("chat:deleted")
    assert deleted["messageId"] == missed[0].id and deleted["seq"] == deleted_seq
    # live again: the next message arrives once, nothing older is repeated
    live = await fake_chat.send(user_id="u", username="u", channel_id=room.channel_id, content="live", nonce=None)
    got = await again.expect("chat:message")
    assert got["message"]["id"] == live.id
    await asyncio.sleep(0.2)
    assert [e for e in again.drain() + again.seen if e["type"] == "chat:message"] == []


async def test_resume_too_far_back_says_not_recovered(start_edge, fake_chat, client):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    for i in range(3):
        await fake_chat.send(user_id="u", username="u", channel_id=room.channel_id, content=f"x{i}", nonce=None)
    fake_chat.first_seq = 3  # events 1..2 are gone
    c = await client(edge)
    history = await _join(c, room.channel_id, since=0)
    assert history["recovered"] is False
    assert [m["content"] for m in history["messages"]] == ["x0", "x1", "x2"]  # the reload it needs


async def test_a_slow_consumer_is_closed_1013_and_counted(start_edge, fake_chat, client):
    from chat_service.edge import metrics

    room = fake_chat.add_room()
    edge = await start_edge(fake_chat, send_buffer_bytes=16 * 1024)
    slow = await client(edge)
    fast = await client(edge)
    await _join(slow, room.channel_id)
    await _join(fast, room.channel_id)
    slow.transport.pause_reading()  # never reads: the kernel buffers fill, then the edge's
    before = metrics.SLOW_CONSUMERS._value.get()
    line = orjson.dumps({"type": "chat:typing", "user": {"id": "u", "pad": "p" * 3000}})
    r = edge.rooms[room.channel_id]
    for _ in range(5000):
        r.push(line)
        r.flush()
        await asyncio.sleep(0)  # the fast reader reads (same loop)
        if len(r.members) < 2:
            break
    assert len(r.members) == 1
    slow.transport.resume_reading()
    code, reason = await asyncio.wait_for(slow.closed, 5)
    assert code == 1013 and reason == "slow consumer"
    assert metrics.SLOW_CONSUMERS._value.get() == before + 1
    fast.send({"type": "ping"})
    await fast.expect("pong", timeout=10)  # the others are untouched


async def test_a_ban_reaches_the_users_sockets_on_every_edge(nats_url, start_edge, fake_chat, client, make_user):
    room = fake_chat.add_room()
    a, b = await start_edge(fake_chat), await start_edge(fake_chat)
    bob = make_user("bob")
    on_a, on_b = await client(a, bob.token), await client(b, bob.token)
    for c in (on_a, on_b):
        await _join(c, room.channel_id)
    nc = await nats.connect(nats_url)
    try:
        until = datetime.now(UTC) + timedelta(minutes=5)
        event = make_event("channel.user_banned", ChannelBan(channel_id=room.channel_id, user_id=bob.id,
                                                             until=until, reason=None), source="channels")
        await nc.publish("channel.user_banned", event.to_json_bytes())
        for c in (on_a, on_b):
            assert (await c.expect("chat:error"))["code"] == "timed_out"
            c.send({"type": "chat:send", "content": "still here?", "nonce": "n"})
            refused = await c.expect("chat:error", nonce="n")
            assert refused["code"] == "timed_out"
    finally:
        await nc.close()


async def test_a_viewer_who_blocked_an_author_does_not_get_their_lines(nats_url, start_edge, fake_chat, client,
                                                                       make_user):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    viewer, troll, friend = make_user(), make_user(), make_user()
    fake_chat.blocks[viewer.id] = {troll.id}
    v = await client(edge, viewer.token)
    other = await client(edge)
    await _join(v, room.channel_id)
    await _join(other, room.channel_id)
    await fake_chat.send(user_id=troll.id, username="troll", channel_id=room.channel_id, content="bad", nonce=None)
    await fake_chat.send(user_id=friend.id, username="friend", channel_id=room.channel_id, content="good",
                         nonce=None)
    assert [(await other.expect("chat:message"))["message"]["content"] for _ in range(2)] == ["bad", "good"]
    assert (await v.expect("chat:message"))["message"]["content"] == "good"
    # unblocking (user.unblocked on NATS) applies at once
    nc = await nats.connect(nats_url)
    try:
        event = make_event("user.unblocked", UserBlock(blocker_id=viewer.id, blocked_id=troll.id), source="auth")
        await nc.publish("user.unblocked", event.to_json_bytes())
        await nc.flush()
        await asyncio.sleep(0.2)
        await fake_chat.send(user_id=troll.id, username="troll", channel_id=room.channel_id, content="sorry",
                             nonce=None)
        assert (await v.expect("chat:message"))["message"]["content"] == "sorry"
    finally:
        await nc.close()


async def test_presence_online_users_typing_and_leave(nats_url, start_edge, fake_chat, client, make_user):
    room = fake_chat.add_room()
    a, b = await start_edge(fake_chat), await start_edge(fake_chat)
    nc = await nats.connect(nats_url)
    snapshots = []

    async def on_presence(msg):
        snapshots.append(parse_event(msg.data).data)

    sub = await nc.subscribe(f"chat.presence.{room.channel_id}", cb=on_presence)
    try:
        ada, bob = make_user("ada"), make_user("bob")
        c_ada = await client(a, ada.token)
        c_bob = await client(b, bob.token)
        watcher = await client(b)
        await _join(watcher, room.channel_id)
        await _join(c_ada, room.channel_id)
        joined = await watcher.expect("chat:user-joined")
        assert joined["user"] == {"id": ada.id, "username": "ada", "displayName": "ada"}
        await _join(c_bob, room.channel_id)
        users = None
        for _ in range(20):
            users = await watcher.expect("chat:users", timeout=5)
            if users["count"] == 2:
                break
        assert users["count"] == 2 and {u["id"] for u in users["users"]} == {ada.id, bob.id}

        c_ada.send({"type": "chat:typing"})
        typing = await watcher.expect("chat:typing")
        assert typing["user"]["id"] == ada.id

        for _ in range(50):
            edges = {s.edge_id: s for s in snapshots}
            if edges.get("edge-1") and edges.get("edge-2") and edges["edge-2"].connections == 2:
                break
            await asyncio.sleep(0.1)
        assert edges["edge-1"].connections == 1 and edges["edge-1"].users == 1
        assert edges["edge-2"].connections == 2 and edges["edge-2"].users == 1

        c_ada.send({"type": "chat:leave"})
        left = await watcher.expect("chat:user-left")
        assert left["userId"] == ada.id
        for _ in range(50):  # edge-1 has nobody left in the room: it says so at once
            if snapshots and [s for s in snapshots if s.edge_id == "edge-1"][-1].connections == 0:
                break
            await asyncio.sleep(0.05)
        assert [s for s in snapshots if s.edge_id == "edge-1"][-1].connections == 0
        assert room.channel_id not in a.rooms
    finally:
        await sub.unsubscribe()
        await nc.close()


async def test_stream_status_and_viewers_are_pushed(nats_url, start_edge, fake_chat, client):
    from contracts.events.streams import StreamViewers

    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    c = await client(edge)
    await _join(c, room.channel_id)
    nc = await nats.connect(nats_url)
    try:
        event = make_event("stream.viewers", StreamViewers(stream_id="s1", channel_id=room.channel_id, count=7,
                                                           peak=9), source="streams")
        await nc.publish("stream.viewers.s1", event.to_json_bytes())  # as VIEWERS stores it
        assert (await c.expect("stream:viewers")) == {"type": "stream:viewers", "streamId": "s1", "count": 7}
    finally:
        await nc.close()


async def test_a_join_storm_shares_history_reads_and_loses_nothing(start_edge, fake_chat, client):
    """60 joins at once, with messages sent throughout: a few shared history reads, and every
    joiner has every message exactly once (from its history or live)."""
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    await fake_chat.send(user_id="u", username="u", channel_id=room.channel_id, content="before", nonce=None)
    reads = 0
    fast_history = fake_chat.history

    async def slow_history(channel_id, **kw):
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.15)  # a read that takes a while: joins pile up behind it
        return await fast_history(channel_id, **kw)

    fake_chat.history = slow_history
    viewers = [await client(edge) for _ in range(60)]
    sent = ["before"]

    async def keep_sending():
        for i in range(8):
            await asyncio.sleep(0.05)
            await fake_chat.send(user_id="u", username="u", channel_id=room.channel_id, content=f"during{i}",
                                 nonce=None)
            sent.append(f"during{i}")

    sending = asyncio.create_task(keep_sending())
    histories = await asyncio.gather(*(_join(v, room.channel_id) for v in viewers))
    await sending
    assert reads <= 6, reads  # one per read-duration, not one per joiner
    await asyncio.sleep(0.3)
    for viewer, history in zip(viewers, histories, strict=True):
        live = [e["message"]["content"] for e in viewer.seen + viewer.drain() if e["type"] == "chat:message"]
        assert [m["content"] for m in history["messages"]] + live == sent
