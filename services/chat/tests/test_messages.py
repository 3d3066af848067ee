"""Nonce replays, deletion rights, history (persisted + unpersisted tail) and resume."""

import asyncio
import uuid

import pytest
from chat_service.messages.service import ChatRejected, decode_room_event, message_id_for
from contracts.catalog import subject_for
from contracts.subjects import CHAT_STREAM


async def send(client, user, channel_id, content="hello", **extra):
    return await client.post("/api/messages", headers=user.headers,
                             json={"channelId": channel_id, "content": content, **extra})


async def test_pub_ack_of_a_duplicate_names_the_original_sequence(nc, chat_app):
    """What decision 2 relies on, checked against the real server: publishing the same
    Nats-Msg-Id again inside the window stores nothing and acks with the first sequence."""
    js = nc.jetstream()
    subject = subject_for("chat.message", channelId="dup-check")
    first = await js.publish(subject, b"{}", headers={"Nats-Msg-Id": "same-id"})
    await js.publish(subject_for("chat.message", channelId="other"), b"{}")
    again = await js.publish(subject, b"{}", headers={"Nats-Msg-Id": "same-id"})
    assert not first.duplicate and again.duplicate
    assert again.seq == first.seq
    assert (await js.stream_info(CHAT_STREAM.name)).state.messages == 2


async def test_a_resent_nonce_stores_one_message_with_the_same_id_and_seq(client, chat, make_user, make_channel,
                                                                         persisted, nc, redis_url):
    user = make_user()
    channel_id = await make_channel(make_user())
    first = await send(client, user, channel_id, "once", nonce="n-1")
    again = await send(client, user, channel_id, "once", nonce="n-1")
    assert first.status_code == again.status_code == 201
    assert (again.json()["id"], again.json()["seq"]) == (first.json()["id"], first.json()["seq"])
    assert first.json()["id"] == str(message_id_for(channel_id, user.id, "n-1"))
    # the same nonce through the edge's entry point, with the Redis hint gone (a resend racing
    # the first send): JetStream's dedup answers with the original
    import redis.asyncio as aioredis
    r = aioredis.Redis.from_url(redis_url)
    await r.delete(f"chat:msg:{first.json()['id']}")
    await r.aclose()
    via_ws = await chat.send(user_id=user.id, username=user.username, channel_id=channel_id, content="once",
                             nonce="n-1")
    assert (via_ws.id, via_ws.seq) == (first.json()["id"], first.json()["seq"])
    # another user's identical nonce is another message
    other = await send(client, make_user(), channel_id, "once", nonce="n-1")
    assert other.json()["id"] != first.json()["id"]
    rows = await persisted(2)
    assert len(rows) == 2
    info = await nc.jetstream().stream_info(CHAT_STREAM.name)
    assert info.state.messages == 2


async def test_a_replay_is_not_refused_by_slow_mode(client, make_user, make_channel, moderation_events):
    user = make_user()
    channel_id = await make_channel(make_user())
    await moderation_events.filters(channel_id, slow_mode_seconds=60)
    first = await send(client, user, channel_id, "a", nonce="slow-1")
    again = await send(client, user, channel_id, "a", nonce="slow-1")
    assert again.status_code == 201 and again.json()["seq"] == first.json()["seq"]


async def test_delete_rights_author_owner_moderator(client, make_user, make_channel, moderation_events,
                                                    assert_problem, persisted):
    owner, mod, author, stranger = make_user(), make_user(), make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.moderator(channel_id, mod.id)
    ids = [(await send(client, author, channel_id, f"m{n}")).json()["id"] for n in range(3)]
    assert_problem(await client.delete(f"/api/messages/{ids[0]}", headers=stranger.headers), 403)
    assert_problem(await client.delete(f"/api/messages/{ids[0]}"), 401)
    assert_problem(await client.delete(f"/api/messages/{uuid.uuid4()}", headers=owner.headers), 404)
    assert_problem(await client.delete("/api/messages/not-a-uuid", headers=owner.headers), 404)
    for actor, mid in zip((author, owner, mod), ids, strict=True):
        r = await client.delete(f"/api/messages/{mid}", headers=actor.headers)
        assert r.status_code == 204, r.text
    # deleting again is harmless
    assert (await client.delete(f"/api/messages/{ids[0]}", headers=author.headers)).status_code == 204
    rows = await persisted(3)
    async def all_deleted():
        return [r for r in await persisted(3) if r.deleted_at is None]
    from asyncio import sleep
    for _ in range(100):
        if not await all_deleted():
            break
        await sleep(0.05)
    assert await all_deleted() == []
    history = (await client.get(f"/api/channels/{channel_id}/messages")).json()
    assert history["items"] == []
    assert len(rows) == 3


@pytest.mark.settings(persister_enabled=False)
async def test_history_merges_postgres_with_the_unpersisted_tail(client, chat, make_user, make_channel, nc,
                                                                 moderation_events, chat_settings, db):
    """With no persister running, history comes from JetStream alone; then a persister writes
    part of it and history is the same, without duplicates."""
    from chat_service.messages.persister import Persister

    user = make_user()
    channel_id = await make_channel(make_user())
    stream_id = await moderation_events.stream(channel_id)
    other_room = await make_channel(make_user())
    sent = []
    for n in range(6):
        sent.append((await send(client, user, channel_id, f"m{n}")).json())
        await send(client, user, other_room, f"elsewhere {n}")
    await client.delete(f"/api/messages/{sent[1]['id']}", headers=user.headers)
    expected = [m["id"] for m in sent if m["id"] != sent[1]["id"]]

    history = (await client.get(f"/api/channels/{channel_id}/messages")).json()
    assert [m["id"] for m in history["items"]] == expected
    assert [m["id"] for m in (await client.get(f"/api/streams/{stream_id}/messages")).json()["items"]] == expected

    # persist the first few only: one batch of 7 events of the whole stream
    persister = Persister(chat.db, nc.jetstream(), batch=7, fetch_timeout=5)
    await persister.subscribe()
    assert await persister.run_once() == 7
    history = (await client.get(f"/api/channels/{channel_id}/messages")).json()
    assert [m["id"] for m in history["items"]] == expected

    # paging back: limit 2, then before=<nextCursor>
    page = (await client.get(f"/api/channels/{channel_id}/messages", params={"limit": 2})).json()
    assert [m["id"] for m in page["items"]] == expected[-2:]
    older = (await client.get(f"/api/channels/{channel_id}/messages",
                              params={"limit": 2, "before": page["nextCursor"]})).json()
    assert [m["id"] for m in older["items"]] == expected[-4:-2]
    same = (await client.get(f"/api/channels/{channel_id}/messages",
                             params={"limit": 2, "cursor": page["nextCursor"]})).json()
    assert same == older
    bad = await client.get(f"/api/channels/{channel_id}/messages", params={"cursor": "x1"})
    assert bad.status_code == 400
    # everything persisted: same answer from PostgreSQL alone
    total, done = (await nc.jetstream().stream_info(CHAT_STREAM.name)).state.messages, 7
    while done < total:
        done += await persister.run_once()
    history = (await client.get(f"/api/channels/{channel_id}/messages", params={"limit": 100})).json()
    assert [m["id"] for m in history["items"]] == expected
    assert history["nextCursor"] is None


async def test_events_since_is_exact_per_room(chat, make_user, make_channel):
    user = make_user()
    room, other = await make_channel(make_user()), await make_channel(make_user())
    first = await chat.send(user_id=user.id, username=user.username, channel_id=room, content="before")
    mine = []
    for n in range(3):
        mine.append(await chat.send(user_id=user.id, username=user.username, channel_id=room, content=f"m{n}"))
        await chat.send(user_id=user.id, username=user.username, channel_id=other, content=f"o{n}")
    await chat.delete(actor_id=user.id, message_id=mine[0].id)

    events, recovered = await chat.events_since(room, first.seq)
    assert recovered
    assert [(kind, body.get("id") or body.get("messageId")) for _, kind, body in events] == \
        [("chat:message", m.id) for m in mine] + [("chat:deleted", mine[0].id)]
    seqs = [seq for seq, _, _ in events]
    assert seqs == sorted(seqs) and seqs[0] > first.seq
    assert all(body["seq"] == seq for seq, _, body in events)
    # caught up: nothing missed, recovered
    assert await chat.events_since(room, seqs[-1]) == ([], True)
    # a seq the stream never had (e.g. from before a stream reset): reload
    assert await chat.events_since(room, seqs[-1] + 1000) == ([], False)
    # too far behind for one answer: reload
    assert (await chat.events_since(room, first.seq, limit=2)) == ([], False)


async def test_events_since_is_not_recovered_when_the_events_aged_out(chat, make_user, make_channel, nc):
    user = make_user()
    room = await make_channel(make_user())
    old = await chat.send(user_id=user.id, username=user.username, channel_id=room, content="old")
    await chat.send(user_id=user.id, username=user.username, channel_id=room, content="gone soon")
    js = nc.jetstream()
    await js.purge_stream(CHAT_STREAM.name)  # what max_age does to old messages
    newer = await chat.send(user_id=user.id, username=user.username, channel_id=room, content="new")
    assert await chat.events_since(room, old.seq) == ([], False)
    assert await chat.events_since(room, newer.seq) == ([], True)


async def test_decode_room_event_reads_the_stream_sequence(chat, make_user, make_channel, nc):
    user = make_user()
    room = await make_channel(make_user())
    sent = await chat.send(user_id=user.id, username=user.username, channel_id=room, content="decode me")
    raw = await nc.jetstream().get_msg(CHAT_STREAM.name, sent.seq)
    seq, kind, body = decode_room_event(raw)
    assert (seq, kind) == (sent.seq, "chat:message")
    assert body == sent.model_dump(mode="json", by_alias=True)
    with pytest.raises(ValueError):
        class Fake:
            seq, data, subject = 1, b"not json", "chat.message.x"
        decode_room_event(Fake())


async def test_delete_by_someone_else_through_the_service_raises(chat, make_user, make_channel):
    author, stranger = make_user(), make_user()
    room = await make_channel(make_user())
    sent = await chat.send(user_id=author.id, username=author.username, channel_id=room, content="mine")
    with pytest.raises(ChatRejected):
        await chat.delete(actor_id=stranger.id, message_id=sent.id)
    with pytest.raises(LookupError):
        await chat.delete(actor_id=author.id, message_id=str(uuid.uuid4()))
    assert await chat.badges(room, author.id) == []
    assert await chat.is_blocked_by(author.id, stranger.id) is False


@pytest.mark.settings(persister_enabled=False)
async def test_an_unacknowledged_publish_is_not_accepted_and_spends_no_allowance(
        client, chat, make_user, make_channel, moderation_events, nc, assert_problem):
    """With the CHAT stream gone, JetStream cannot ack: 503 and nothing stored; the resend
    (same nonce) after it is back is not refused by slow mode."""
    from servicekit.messaging import ensure_streams

    user = make_user()
    channel_id = await make_channel(make_user())
    await moderation_events.filters(channel_id, slow_mode_seconds=60)
    js = nc.jetstream()
    await js.delete_stream(CHAT_STREAM.name)
    r = await send(client, user, channel_id, "lost?", nonce="retry-1")
    assert_problem(r, 503)
    assert r.headers["Retry-After"] == "1"
    await ensure_streams(js, [CHAT_STREAM])
    r = await send(client, user, channel_id, "lost?", nonce="retry-1")
    assert r.status_code == 201, r.text
    assert (await js.stream_info(CHAT_STREAM.name)).state.messages == 1


async def test_a_join_storm_reads_rooms_a_bounded_number_at_a_time(chat, make_user, make_channel):
    """Every resume reads through its own short-lived JetStream consumer; 60 at once must not
    create 60 consumers (thousands, on an edge restart, meet the server's consumer limit)."""
    user = make_user()
    room = await make_channel(make_user())
    first = await chat.send(user_id=user.id, username=user.username, channel_id=room, content="first")
    later = [await chat.send(user_id=user.id, username=user.username, channel_id=room, content=f"m{n}")
             for n in range(3)]
    in_flight = peak = 0
    subscribe = chat.js.pull_subscribe

    async def counting(*args, **kwargs):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        sub = await subscribe(*args, **kwargs)
        unsubscribe = sub.unsubscribe

        async def counted_unsubscribe():
            nonlocal in_flight
            in_flight -= 1
            await unsubscribe()

        sub.unsubscribe = counted_unsubscribe
        return sub

    chat.js.pull_subscribe = counting
    try:
        results = await asyncio.gather(*(chat.events_since(room, first.seq) for _ in range(60)))
    finally:
        chat.js.pull_subscribe = subscribe
    assert all(recovered and [body["id"] for _, _, body in events] == [m.id for m in later]
               for events, recovered in results)
    assert chat.settings.room_read_concurrency == 16  # the default
    assert 1 < peak <= 16, peak
