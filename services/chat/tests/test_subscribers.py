"""Subscribers in chat (API.md Extensions, "Subscriptions"): the `subscriber:<TIER>` badge and the
`subscribersOnly` filter, driven by real subscription.* and channel.filters_updated events through
NATS, like followers-only (test_send_pipeline.py)."""

from datetime import UTC, datetime, timedelta

from chat_service.moderation.service import Moderation
from chat_service.moderation.snapshots import KvReplicas, open_bucket


async def send(client, user, channel_id, content="hello"):
    return await client.post("/api/messages", headers=user.headers, json={"channelId": channel_id, "content": content})


async def badges(client, user, channel_id):
    r = await send(client, user, channel_id)
    assert r.status_code == 201, r.text
    return r.json()["user"]["badges"]


async def test_a_subscriber_carries_a_badge_with_the_tier(client, make_user, make_channel, moderation_events):
    owner, mod, viewer, other = make_user(), make_user(), make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.moderator(channel_id, mod.id)
    assert await badges(client, viewer, channel_id) == []

    await moderation_events.subscription(channel_id, viewer.id, "BASIC")
    assert await badges(client, viewer, channel_id) == ["subscriber:BASIC"]
    await moderation_events.subscription(channel_id, viewer.id, "VIP", event="subscription.changed")
    assert await badges(client, viewer, channel_id) == ["subscriber:VIP"]
    # a moderator who subscribes shows both, the role first
    await moderation_events.subscription(channel_id, mod.id, "PREMIUM")
    assert await badges(client, mod, channel_id) == ["moderator", "subscriber:PREMIUM"]
    assert await badges(client, owner, channel_id) == ["owner"]
    # a subscription to another channel shows nowhere else
    elsewhere = await make_channel(owner)
    assert await badges(client, viewer, elsewhere) == []

    # cancelled: still a subscriber until the renewal date; past it, not even before the expiry event
    await moderation_events.subscription(channel_id, viewer.id, "VIP", event="subscription.cancelled",
                                         status="CANCELLED")
    assert await badges(client, viewer, channel_id) == ["subscriber:VIP"]
    await moderation_events.subscription(channel_id, other.id, "BASIC", event="subscription.cancelled",
                                         status="CANCELLED", renewal_date=datetime.now(UTC) - timedelta(seconds=1))
    assert await badges(client, other, channel_id) == []
    await moderation_events.subscription(channel_id, viewer.id, "VIP", event="subscription.expired", status="EXPIRED")
    assert await badges(client, viewer, channel_id) == []


async def test_subscribers_only_exempts_owner_and_moderators(client, make_user, make_channel, moderation_events,
                                                             assert_problem):
    owner, mod, viewer, follower = make_user(), make_user(), make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.moderator(channel_id, mod.id)
    await moderation_events.follow(channel_id, follower.id)
    await moderation_events.filters(channel_id, subscribers_only=True)

    for user in (viewer, follower):  # following is not subscribing
        body = assert_problem(await send(client, user, channel_id), 403)
        assert body["type"].endswith(":subscribers_only")
    assert (await send(client, owner, channel_id)).status_code == 201
    assert (await send(client, mod, channel_id)).status_code == 201

    await moderation_events.subscription(channel_id, viewer.id, "BASIC")
    assert (await send(client, viewer, channel_id)).status_code == 201
    await moderation_events.subscription(channel_id, viewer.id, "BASIC", event="subscription.cancelled",
                                         status="CANCELLED")
    assert (await send(client, viewer, channel_id)).status_code == 201  # until the renewal date
    await moderation_events.subscription(channel_id, viewer.id, "BASIC", event="subscription.expired",
                                         status="EXPIRED")
    assert_problem(await send(client, viewer, channel_id), 403)

    # both modes at once: a subscriber who does not follow is still refused by followers-only
    await moderation_events.filters(channel_id, followers_only=True, subscribers_only=True)
    await moderation_events.subscription(channel_id, viewer.id, "VIP")
    assert assert_problem(await send(client, viewer, channel_id), 403)["type"].endswith(":followers_only")
    await moderation_events.follow(channel_id, viewer.id)
    assert (await send(client, viewer, channel_id)).status_code == 201
    # the mode off again: anyone
    await moderation_events.filters(channel_id)
    assert (await send(client, follower, channel_id)).status_code == 201


async def test_subscribers_reach_the_replica_and_the_edges_snapshots_by_event_time(
        make_user, make_channel, moderation_events, chat_app, db):
    owner, gone, back, kept = make_user(), make_user().id, make_user().id, make_user().id
    channel_id = await make_channel(owner)
    await moderation_events.filters(channel_id, subscribers_only=True)
    now = datetime.now(UTC)
    earlier = now - timedelta(seconds=1)
    # expired at t1 after it was created at t0, the expiry arriving first: stays gone
    await moderation_events.subscription(channel_id, gone, "VIP", event="subscription.expired", status="EXPIRED",
                                         time=now)
    await moderation_events.subscription(channel_id, gone, "VIP", time=earlier)
    # created at t1 after an expiry at t0, the expiry arriving last: stays
    await moderation_events.subscription(channel_id, back, "PREMIUM", time=now)
    await moderation_events.subscription(channel_id, back, "PREMIUM", event="subscription.expired",
                                         status="EXPIRED", time=earlier)
    until = now + timedelta(days=3)
    await moderation_events.subscription(channel_id, kept, "BASIC", event="subscription.cancelled",
                                         status="CANCELLED", renewal_date=until)

    kv = await open_bucket(chat_app.state.runtime.js)
    # no cache: what the replicas say (the API) and what the edges read (the KV snapshots)
    for source in (chat_app.state.runtime.db, KvReplicas(kv)):
        state = await Moderation(source).channel(channel_id)
        assert state.filters.subscribers_only
        assert state.subscribers == {back: ("PREMIUM", None), kept: ("BASIC", until)}
        assert state.badges(back) == ["subscriber:PREMIUM"] and state.badges(gone) == []
        assert state.subscription_tier(kept, until - timedelta(seconds=1)) == "BASIC"
        assert state.subscription_tier(kept, until) is None


async def test_the_cache_applies_core_subscription_events_at_once_and_by_event_time(make_user, make_channel,
                                                                                    chat_app):
    from contracts.envelope import make_event
    from contracts.events.subscriptions import Subscription

    channel_id = await make_channel(make_user())
    user = make_user().id
    cache = Moderation(chat_app.state.runtime.db, ttl_seconds=3600)
    await cache.channel(channel_id)  # cached: events change it in place
    now = datetime.now(UTC)

    def event(event_type, status, at):
        return make_event(event_type, Subscription(id="s", channel_id=channel_id, user_id=user, tier="VIP",
                                                   status=status, renewal_date=now + timedelta(days=30)),
                          source="channels", time=at)

    cache.apply(event("subscription.created", "ACTIVE", now))
    assert (await cache.channel(channel_id)).badges(user) == ["subscriber:VIP"]
    cache.apply(event("subscription.expired", "EXPIRED", now - timedelta(seconds=1)))  # older: ignored
    assert (await cache.channel(channel_id)).badges(user) == ["subscriber:VIP"]
    cache.apply(event("subscription.expired", "EXPIRED", now + timedelta(seconds=1)))
    assert (await cache.channel(channel_id)).badges(user) == []
