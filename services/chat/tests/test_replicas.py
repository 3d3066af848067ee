"""The replicas, driven by real published events, and the cache that reads them."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from chat_service.moderation.service import Moderation
from contracts.events.channels import Channel as ChannelPayload
from contracts.events.streams import StreamStatus
from contracts.events.users import UserBlock, UserProfile
from sqlalchemy import text


async def rows(db, sql: str, **params):
    async with db() as session:
        return (await session.exec(text(sql).bindparams(**params))).all()


async def test_every_replica_follows_its_events(make_user, make_channel, moderation_events, publish, settled, db):
    owner, mod, fan, troll = make_user(), make_user(), make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.moderator(channel_id, mod.id)
    await moderation_events.follow(channel_id, fan.id)
    await moderation_events.ban(channel_id, troll.id, until=datetime.now(UTC) + timedelta(minutes=5))
    await moderation_events.filters(channel_id, banned_words=["x"], profanity_filter=True, slow_mode_seconds=3,
                                    followers_only=True)
    await publish("user.registered", UserProfile(user_id=fan.id, username="fan", display_name="Fan",
                                                 avatar=None), source="auth")
    await publish("user.blocked", UserBlock(blocker_id=fan.id, blocked_id=troll.id), source="auth")
    await settled()

    assert await rows(db, "SELECT owner_id FROM chat_channels WHERE id = :c", c=channel_id) == [(owner.id,)]
    assert await rows(db, "SELECT user_id FROM chat_moderators WHERE channel_id = :c", c=channel_id) == [(mod.id,)]
    assert await rows(db, "SELECT user_id FROM chat_follows WHERE channel_id = :c", c=channel_id) == [(fan.id,)]
    assert [r[0] for r in await rows(db, "SELECT user_id FROM chat_bans WHERE channel_id = :c", c=channel_id)] \
        == [troll.id]
    assert await rows(db, "SELECT banned_words, profanity_filter, slow_mode_seconds, followers_only FROM "
                          "chat_filters WHERE channel_id = :c", c=channel_id) == [(["x"], True, 3, True)]
    assert await rows(db, "SELECT username, display_name FROM chat_users WHERE id = :u", u=fan.id) == \
        [("fan", "Fan")]
    assert await rows(db, "SELECT blocked_id FROM chat_blocks WHERE blocker_id = :u", u=fan.id) == [(troll.id,)]

    # and their undo events
    await moderation_events.moderator(channel_id, mod.id, added=False)
    await moderation_events.follow(channel_id, fan.id, followed=False)
    await moderation_events.unban(channel_id, troll.id)
    await publish("user.unblocked", UserBlock(blocker_id=fan.id, blocked_id=troll.id), source="auth")
    await settled()
    for table, where in (("chat_moderators", "channel_id"), ("chat_follows", "channel_id"),
                         ("chat_bans", "channel_id")):
        assert await rows(db, f"SELECT 1 FROM {table} WHERE {where} = :c", c=channel_id) == []
    assert await rows(db, "SELECT 1 FROM chat_blocks WHERE blocker_id = :u", u=fan.id) == []


async def test_an_older_channel_event_does_not_overwrite_a_newer_one(make_user, publish, settled, db):
    owner, new_owner = make_user(), make_user()
    channel_id = str(uuid.uuid4())

    def payload(owner_id, slug):
        return ChannelPayload(id=channel_id, slug=slug, name="n", description=None, category=None, tags=[],
                              avatar=None, banner=None, is_public=True, owner_id=owner_id)

    now = datetime.now(UTC)
    await publish("channel.updated", payload(new_owner.id, "newer"), time=now)
    await publish("channel.created", payload(owner.id, "older"), time=now - timedelta(seconds=10))
    await settled()
    assert await rows(db, "SELECT owner_id, slug FROM chat_channels WHERE id = :c", c=channel_id) == \
        [(new_owner.id, "newer")]


async def test_a_stream_status_never_moves_backwards(chat, make_user, make_channel, moderation_events, db):
    channel_id = await make_channel(make_user())
    stream_id = await moderation_events.stream(channel_id, StreamStatus.LIVE)
    assert (await chat.resolve_room(channel_id=channel_id)).stream_id == stream_id
    await moderation_events.stream(channel_id, StreamStatus.ENDING, stream_id=stream_id)
    await moderation_events.stream(channel_id, StreamStatus.LIVE, stream_id=stream_id)  # late, stale
    assert await rows(db, "SELECT status FROM chat_streams WHERE id = :s", s=stream_id) == [("ENDING",)]
    room = await chat.resolve_room(stream_id=stream_id)
    assert room.channel_id == channel_id and room.stream_id is None


async def test_the_cache_sees_changes_at_once_on_another_process(chat, make_user, make_channel, publish, nc,
                                                                  chat_app):
    """A second Moderation (as on an edge) with a long TTL still sees a ban, a follow, a profile
    and a block immediately, from core NATS; listeners hear the same events."""
    from contracts.events.channels import ChannelBan, ChannelFollow

    edge = Moderation(chat.db, ttl_seconds=3600)
    heard = []
    edge.add_listener(lambda event: heard.append(event.type))
    await edge.start(nc)
    try:
        owner, user = make_user(), make_user()
        channel_id = await make_channel(owner)
        state = await edge.channel(channel_id)
        assert state.owner_id == owner.id and state.ban_of(user.id) is None
        assert await edge.is_follower(channel_id, user.id) is False
        assert await edge.blocked_users(user.id) == frozenset()
        await publish("channel.user_banned", ChannelBan(channel_id=channel_id, user_id=user.id, until=None,
                                                        reason=None))
        await publish("channel.followed", ChannelFollow(channel_id=channel_id, user_id=user.id))
        await publish("user.updated", UserProfile(user_id=user.id, username="renamed", display_name="Renamed",
                                                  avatar=None), source="auth")
        await publish("user.blocked", UserBlock(blocker_id=user.id, blocked_id=owner.id), source="auth")
        for _ in range(100):
            if len(heard) >= 4:
                break
            await asyncio.sleep(0.02)
        assert (await edge.channel(channel_id)).ban_of(user.id) == (True, None)
        assert await edge.is_follower(channel_id, user.id) is True
        assert (await edge.profile(user.id)).display_name == "Renamed"
        assert await edge.blocked_users(user.id) == frozenset({owner.id})
        assert {"channel.user_banned", "channel.followed", "user.updated", "user.blocked"} <= set(heard)
    finally:
        await edge.stop()


async def test_a_new_channel_is_usable_at_once_after_a_miss(chat, make_user, publish):
    """A lookup before the channel existed caches 'unknown' only briefly, and channel.created
    replaces it."""
    owner = make_user()
    channel_id = str(uuid.uuid4())
    assert await chat.moderation.channel(channel_id) is None
    await publish("channel.created", ChannelPayload(id=channel_id, slug="fresh", name="n", description=None,
                                                    category=None, tags=[], avatar=None, banner=None,
                                                    is_public=True, owner_id=owner.id))
    for _ in range(100):
        state = await chat.moderation.channel(channel_id)
        if state is not None:
            break
        await asyncio.sleep(0.02)
    assert state is not None and state.owner_id == owner.id
