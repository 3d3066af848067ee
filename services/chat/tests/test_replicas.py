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
        assert await rows(db, f"SELECT 1 FROM {table} WHERE {where} = :c AND present", c=channel_id) == []
    assert await rows(db, "SELECT 1 FROM chat_blocks WHERE blocker_id = :u AND present", u=fan.id) == []


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


# Issue 14 item 4: the relay (SKIP LOCKED), replicas sharing a durable and nak delays all reorder
# events, so each add/remove pair is applied by event time per key; a removal is a tombstone.
_PAIRS = {
    "moderator": ("channel.moderator_added", "channel.moderator_removed"),
    "ban": ("channel.user_banned", "channel.user_unbanned"),
    "follow": ("channel.followed", "channel.unfollowed"),
    "block": ("user.blocked", "user.unblocked"),
}


def _pair_payload(kind: str, channel_id: str, user_id: str, added: bool):
    from contracts.events.channels import ChannelBan, ChannelFollow, ChannelModerator, ChannelUnban
    if kind == "moderator":
        return ChannelModerator(channel_id=channel_id, user_id=user_id)
    if kind == "ban":
        return ChannelBan(channel_id=channel_id, user_id=user_id, until=None, reason="t") if added else \
            ChannelUnban(channel_id=channel_id, user_id=user_id)
    if kind == "follow":
        return ChannelFollow(channel_id=channel_id, user_id=user_id)
    return UserBlock(blocker_id=channel_id, blocked_id=user_id)


async def _holds(moderation: Moderation, kind: str, channel_id: str, user_id: str) -> bool:
    if kind == "moderator":
        return user_id in (await moderation.channel(channel_id)).moderators
    if kind == "ban":
        return user_id in (await moderation.channel(channel_id)).bans
    if kind == "follow":
        return await moderation.is_follower(channel_id, user_id)
    return user_id in await moderation.blocked_users(channel_id)


async def test_replica_events_delivered_out_of_order_keep_the_newest(make_user, make_channel, publish, settled,
                                                                      chat_app):
    owner = make_user()
    now = datetime.now(UTC)
    for kind, (added, removed) in _PAIRS.items():
        channel_id = await make_channel(owner) if kind != "block" else make_user().id
        gone, back = make_user().id, make_user().id
        source = "auth" if kind == "block" else "channels"
        # removed at t1 after being added at t0, but the removal arrives first: stays removed
        await publish(removed, _pair_payload(kind, channel_id, gone, False), source=source, time=now)
        await publish(added, _pair_payload(kind, channel_id, gone, True), source=source,
                      time=now - timedelta(seconds=1))
        # added at t1 after a removal at t0, the removal arriving last: stays added
        await publish(added, _pair_payload(kind, channel_id, back, True), source=source, time=now)
        await publish(removed, _pair_payload(kind, channel_id, back, False), source=source,
                      time=now - timedelta(seconds=1))
        await settled()
        from chat_service.moderation.snapshots import KvReplicas, open_bucket
        kv = await open_bucket(chat_app.state.runtime.js)
        # no cache: what the replicas say, and what the edges read (the KV snapshots)
        for source in (chat_app.state.runtime.db, KvReplicas(kv)):
            fresh = Moderation(source)
            assert not await _holds(fresh, kind, channel_id, gone), f"{kind}: a late {added} undid the {removed}"
            assert await _holds(fresh, kind, channel_id, back), f"{kind}: a late {removed} undid the {added}"


async def test_the_cache_applies_core_events_by_event_time_too(make_user, make_channel, chat_app):
    """The same rule in every process's cache (an edge decides sends from it): a late, older
    core-NATS event does not undo a newer one."""
    from contracts.envelope import make_event
    from contracts.events.channels import ChannelBan, ChannelModerator, ChannelUnban

    channel_id = await make_channel(make_user())
    mod, troll = make_user().id, make_user().id
    cache = Moderation(chat_app.state.runtime.db, ttl_seconds=3600)
    await cache.channel(channel_id)  # cached, so the events change it in place
    now = datetime.now(UTC)
    earlier = now - timedelta(seconds=1)
    for event in (
        make_event("channel.moderator_removed", ChannelModerator(channel_id=channel_id, user_id=mod),
                   source="channels", time=now),
        make_event("channel.moderator_added", ChannelModerator(channel_id=channel_id, user_id=mod),
                   source="channels", time=earlier),
        make_event("channel.user_banned", ChannelBan(channel_id=channel_id, user_id=troll, until=None, reason="t"),
                   source="channels", time=now),
        make_event("channel.user_unbanned", ChannelUnban(channel_id=channel_id, user_id=troll),
                   source="channels", time=earlier),
    ):
        cache.apply(event)
    state = await cache.channel(channel_id)
    assert mod not in state.moderators
    assert troll in state.bans
