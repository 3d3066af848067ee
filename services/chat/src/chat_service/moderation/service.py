"""Moderation state, read by the REST path and by every edge through this one module.

Two layers:
- **Replicas** in chat's database, written by inbox consumers on EVENTS (`handle_event`): channels
  (owner), filters, moderators, bans/timeouts, follows, subscribers (with their tier), user
  profiles, blocks, streams. They are
  the truth this service decides with and survive restarts.
- **An in-process cache** (`Moderation`) in front of them. Each process (the API and every edge)
  also subscribes to the same subjects over core NATS: JetStream stores `channel.user_banned`
  etc., and a core subscriber on the subject receives the same publish at once. The cache applies
  those events immediately, so a ban takes effect on every edge within milliseconds, without
  waiting for the durable consumer. A short TTL reloads from the replicas as a safety net (for a
  core message lost during a reconnect).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contracts import subjects as s
from contracts.envelope import Envelope, parse_event
from contracts.events import channels as ch
from contracts.events import streams as st
from contracts.events import subscriptions as sb
from contracts.events import users as us
from contracts.requests import CHANNEL_GET, ChannelGetRequest
from nats.aio.client import Client as NATS
from servicekit.db import Database
from servicekit.messaging import NoAnswer, ask
from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chat_service.moderation.models import (
    BanReplica,
    BlockReplica,
    ChannelReplica,
    FiltersReplica,
    FollowReplica,
    ModeratorReplica,
    StreamReplica,
    SubscriptionReplica,
    UserReplica,
)

log = logging.getLogger("chat.moderation")
NEGATIVE_TTL = 0.5

# what the replicas (and the caches) are built from
REPLICA_EVENTS = (
    s.CHANNEL_CREATED, s.CHANNEL_UPDATED, s.CHANNEL_FILTERS_UPDATED,
    s.CHANNEL_MODERATOR_ADDED, s.CHANNEL_MODERATOR_REMOVED,
    s.CHANNEL_USER_BANNED, s.CHANNEL_USER_UNBANNED,
    s.CHANNEL_FOLLOWED, s.CHANNEL_UNFOLLOWED,
    s.SUBSCRIPTION_CREATED, s.SUBSCRIPTION_CHANGED, s.SUBSCRIPTION_CANCELLED, s.SUBSCRIPTION_EXPIRED,
    s.USER_REGISTERED, s.USER_UPDATED, s.USER_BLOCKED, s.USER_UNBLOCKED,
    s.STREAM_CREATED, s.STREAM_STARTED, s.STREAM_STATUS_CHANGED, s.STREAM_ENDED, s.STREAM_ARCHIVED,
)
SUBSCRIPTION_EVENTS = {s.SUBSCRIPTION_CREATED, s.SUBSCRIPTION_CHANGED, s.SUBSCRIPTION_CANCELLED,
                       s.SUBSCRIPTION_EXPIRED}
STREAM_EVENTS = {s.STREAM_CREATED, s.STREAM_STARTED, s.STREAM_STATUS_CHANGED, s.STREAM_ENDED,
                 s.STREAM_ARCHIVED}
# a stream's status never moves backwards (API.md); a late event must not revive it
_STATUS_RANK = {"OFFLINE": 0, "LIVE": 1, "ENDING": 2, "ARCHIVED": 3}


# ---- replicas: the inbox consumers' handler --------------------------------------------------

def _channel_user(data) -> dict:
    return {"channel_id": data.channel_id, "user_id": data.user_id}


def _no_extra(data) -> dict:
    return {}


def _subscribed(data) -> bool:
    return str(data.status) != "EXPIRED"


def subscription_until(data) -> datetime | None:
    """A CANCELLED subscription counts until its renewal date; an ACTIVE one renews (no end)."""
    return data.renewal_date if str(data.status) == "CANCELLED" else None


def _subscription(data) -> dict:
    return {"tier": str(data.tier), "until": subscription_until(data)}


# event type -> (table, present after it, its key columns, other columns it sets)
MEMBERSHIP_EVENTS: dict[str, tuple[type, bool, Callable, Callable]] = {
    s.CHANNEL_MODERATOR_ADDED: (ModeratorReplica, True, _channel_user, _no_extra),
    s.CHANNEL_MODERATOR_REMOVED: (ModeratorReplica, False, _channel_user, _no_extra),
    s.CHANNEL_USER_BANNED: (BanReplica, True, _channel_user, lambda d: {"until": d.until, "reason": d.reason}),
    s.CHANNEL_USER_UNBANNED: (BanReplica, False, _channel_user, _no_extra),
    s.CHANNEL_FOLLOWED: (FollowReplica, True, _channel_user, _no_extra),
    s.CHANNEL_UNFOLLOWED: (FollowReplica, False, _channel_user, _no_extra),
    s.USER_BLOCKED: (BlockReplica, True, lambda d: {"blocker_id": d.blocker_id, "blocked_id": d.blocked_id},
                     _no_extra),
    s.USER_UNBLOCKED: (BlockReplica, False, lambda d: {"blocker_id": d.blocker_id, "blocked_id": d.blocked_id},
                       _no_extra),
}


async def apply_membership(session: AsyncSession, model, key: dict, present: bool, at: datetime,
                           extra: dict) -> None:
    """Set one key present or absent (a tombstone) as of `at`, unless the row reflects a newer
    event: the last event by event time wins, whatever order they arrive in. An equal time is
    applied (a redelivery of the same event changes nothing)."""
    values = {"present": present, "changed_at": at, **extra}
    await session.exec(insert(model).values(**key, **values).on_conflict_do_update(
        index_elements=list(key), set_=values, where=col(model.changed_at) <= at))


async def handle_event(session: AsyncSession, event: Envelope) -> None:
    """InboxConsumer handler for every replica event (runs once per event id)."""
    data, t = event.data, event.type
    if t in (s.CHANNEL_CREATED, s.CHANNEL_UPDATED):
        await record_channel(session, data, event.time)
    elif t == s.CHANNEL_FILTERS_UPDATED:
        values = {"banned_words": list(data.banned_words), "profanity_filter": data.profanity_filter,
                  "slow_mode_seconds": data.slow_mode_seconds, "followers_only": data.followers_only,
                  "subscribers_only": data.subscribers_only, "synced_at": event.time}
        await session.exec(insert(FiltersReplica).values(channel_id=data.channel_id, **values)
                           .on_conflict_do_update(index_elements=["channel_id"], set_=values,
                                                  where=col(FiltersReplica.synced_at) <= event.time))
    elif t in SUBSCRIPTION_EVENTS:
        # one table for the four: present while not EXPIRED, ordered by event time like the others
        present = _subscribed(data)
        extra = _subscription(data)
        if not present:
            extra = {"tier": extra["tier"]}  # the row needs a tier even as a tombstone
        await apply_membership(session, SubscriptionReplica, _channel_user(data), present, event.time, extra)
    elif t in MEMBERSHIP_EVENTS:
        model, present, key, extra = MEMBERSHIP_EVENTS[t]
        await apply_membership(session, model, key(data), present, event.time, extra(data) if present else {})
    elif t in (s.USER_REGISTERED, s.USER_UPDATED):
        values = {"username": data.username, "display_name": data.display_name, "synced_at": event.time}
        await session.exec(insert(UserReplica).values(id=data.user_id, **values).on_conflict_do_update(
            index_elements=["id"], set_=values, where=col(UserReplica.synced_at) <= event.time))
    elif t in STREAM_EVENTS:
        status = str(data.status)
        values = {"channel_id": data.channel_id, "status": status, "synced_at": event.time}
        stmt = insert(StreamReplica).values(id=data.id, started_at=data.start_time, **values)
        # every event from going LIVE on carries the same start; one without it (a late
        # stream.created) must not erase it
        started = func.coalesce(stmt.excluded.started_at, StreamReplica.started_at)
        # forward only: keep the row when it already holds a later status
        await session.exec(stmt.on_conflict_do_update(
            index_elements=["id"], set_={**values, "started_at": started},
            where=text("(CASE chat_streams.status WHEN 'OFFLINE' THEN 0 WHEN 'LIVE' THEN 1 "
                       "WHEN 'ENDING' THEN 2 ELSE 3 END) <= :rank").bindparams(rank=_STATUS_RANK.get(status, 3))))


async def record_channel(session: AsyncSession, data: ch.Channel, at: datetime) -> None:
    """Upsert the channel replica with the state of `at`; a row already newer is kept, so the
    event and a `channels.get` lookup may record the same channel in either order."""
    values = {"owner_id": data.owner_id, "slug": data.slug, "synced_at": at}
    await session.exec(insert(ChannelReplica).values(id=data.id, **values).on_conflict_do_update(
        index_elements=["id"], set_=values, where=col(ChannelReplica.synced_at) <= at))


# ---- the cache ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    banned_words: tuple[str, ...] = ()
    profanity_filter: bool = False
    slow_mode_seconds: int = 0
    followers_only: bool = False
    pattern: re.Pattern | None = None
    subscribers_only: bool = False

    @classmethod
    def of(cls, banned_words=(), profanity_filter=False, slow_mode_seconds=0, followers_only=False,
           subscribers_only=False) -> Filters:
        words = tuple(w.strip().lower() for w in banned_words if w and w.strip())
        pattern = None
        if words:
            # whole words (and phrases), any case: "ass" must not refuse "class"
            alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
            pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        return cls(words, bool(profanity_filter), int(slow_mode_seconds), bool(followers_only), pattern,
                   bool(subscribers_only))


@dataclass
class ChannelState:
    """What one room's decisions need, cached per process."""

    channel_id: str
    owner_id: str
    slug: str
    moderators: set[str] = field(default_factory=set)
    filters: Filters = field(default_factory=Filters)
    # user id -> end of the timeout (None: permanent ban)
    bans: dict[str, datetime | None] = field(default_factory=dict)
    live_stream_id: str | None = None
    expires: float = 0.0
    # user id -> (tier, end of a cancelled subscription or None while it renews): the room's
    # subscribers, in memory so that badges and subscribers-only cost the send path no lookup
    subscribers: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    # ("moderator"|"ban"|"subscription", user id) -> time of the event the entry reflects, removals included:
    # a late core-NATS event older than it changes nothing (as in the replicas)
    stamps: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def newer(self, kind: str, user_id: str, at: datetime | None) -> bool:
        """Record `at` for the key and say whether an event of that time may change it."""
        if at is None:
            return True
        seen = self.stamps.get((kind, user_id))
        if seen is not None and seen > at:
            return False
        self.stamps[(kind, user_id)] = at
        return True

    def is_privileged(self, user_id: str) -> bool:
        """Owner or moderator: exempt from slow mode and followers-only, higher rate limit."""
        return user_id == self.owner_id or user_id in self.moderators

    def subscription_tier(self, user_id: str, now: datetime | None = None) -> str | None:
        """The user's tier while their subscription counts (ACTIVE, or CANCELLED before its date)."""
        entry = self.subscribers.get(user_id)
        if entry is None:
            return None
        tier, until = entry
        if until is not None and until <= (now or datetime.now(UTC)):
            return None
        return tier

    def badges(self, user_id: str) -> list[str]:
        """The role badge (owner or moderator), then `subscriber:<TIER>` for a subscriber."""
        if user_id == self.owner_id:
            badges = ["owner"]
        elif user_id in self.moderators:
            badges = ["moderator"]
        else:
            badges = []
        if self.subscribers:
            tier = self.subscription_tier(user_id)
            if tier is not None:
                badges.append(f"subscriber:{tier}")
        return badges

    def ban_of(self, user_id: str, now: datetime | None = None) -> tuple[bool, datetime | None] | None:
        """None when the user may chat; (True, None) banned; (False, until) timed out."""
        if user_id not in self.bans:
            return None
        until = self.bans[user_id]
        if until is None:
            return True, None
        if until <= (now or datetime.now(UTC)):
            return None
        return False, until


@dataclass(frozen=True)
class Profile:
    username: str
    display_name: str


class _Ttl:
    """A dict whose entries expire; pruned when it grows (bounded memory on a long-lived edge)."""

    def __init__(self, ttl: float, max_entries: int = 100_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict = {}

    def get(self, key):
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit

    def get_even_expired(self, key):
        """(expires at, value) while the entry is still held, fresh or not."""
        return self._data.get(key)

    def put(self, key, value, ttl: float | None = None) -> None:
        if len(self._data) >= self.max_entries:
            now = time.monotonic()
            self._data = {k: v for k, v in self._data.items() if v[0] >= now}
            if len(self._data) >= self.max_entries:
                self._data.clear()
        self._data[key] = (time.monotonic() + (self.ttl if ttl is None else ttl), value)

    def update_if_present(self, key, fn: Callable) -> None:
        hit = self._data.get(key)
        if hit is not None:
            # pushing the expiry out keeps a reload from reading the replica before the durable
            # consumer (same event, slower path) has written it
            self._data[key] = (time.monotonic() + self.ttl, fn(hit[1]))

    def set_fresh(self, key, value) -> None:
        self.put(key, value)

    def drop(self, key) -> None:
        self._data.pop(key, None)


# ---- reading the replicas inside a session (the API's cache loads, the KV snapshots) ----------

async def read_channel(session: AsyncSession, channel_id: str) -> ChannelState | None:
    row = await session.get(ChannelReplica, channel_id, populate_existing=True)
    if row is None:
        return None
    filters = await session.get(FiltersReplica, channel_id, populate_existing=True)
    # tombstones too: their times keep a late add out of the cache as out of the replica
    mods = (await session.exec(select(ModeratorReplica.user_id, ModeratorReplica.present, ModeratorReplica.changed_at)
                               .where(col(ModeratorReplica.channel_id) == channel_id))).all()
    bans = (await session.exec(select(BanReplica.user_id, BanReplica.until, BanReplica.present, BanReplica.changed_at)
                               .where(col(BanReplica.channel_id) == channel_id))).all()
    subs = (await session.exec(select(SubscriptionReplica.user_id, SubscriptionReplica.tier,
                                      SubscriptionReplica.until, SubscriptionReplica.present,
                                      SubscriptionReplica.changed_at)
                               .where(col(SubscriptionReplica.channel_id) == channel_id))).all()
    live = (await session.exec(select(StreamReplica.id).where(
        col(StreamReplica.channel_id) == channel_id, col(StreamReplica.status) == "LIVE")
        .order_by(col(StreamReplica.synced_at).desc()).limit(1))).first()
    return ChannelState(
        channel_id=channel_id, owner_id=row.owner_id, slug=row.slug,
        moderators={user_id for user_id, present, _ in mods if present},
        filters=Filters.of(filters.banned_words, filters.profanity_filter, filters.slow_mode_seconds,
                           filters.followers_only, filters.subscribers_only) if filters else Filters(),
        bans={user_id: until for user_id, until, present, _ in bans if present}, live_stream_id=live,
        subscribers={user_id: (tier, until) for user_id, tier, until, present, _ in subs if present},
        stamps={**{("moderator", u): at for u, _, at in mods}, **{("ban", u): at for u, _, _, at in bans},
                **{("subscription", u): at for u, _, _, _, at in subs}})


async def read_follow(session: AsyncSession, channel_id: str, user_id: str) -> bool:
    row = await session.get(FollowReplica, (channel_id, user_id), populate_existing=True)
    return row is not None and row.present


async def read_profiles(session: AsyncSession, user_ids) -> dict[str, Profile]:
    rows = (await session.exec(select(UserReplica).where(col(UserReplica.id).in_(list(user_ids)))
                               .execution_options(populate_existing=True))).all()
    return {r.id: Profile(r.username, r.display_name) for r in rows}


async def read_blocks(session: AsyncSession, user_id: str) -> frozenset[str]:
    rows = (await session.exec(select(BlockReplica.blocked_id)
                               .where(col(BlockReplica.blocker_id) == user_id, col(BlockReplica.present)))).all()
    return frozenset(rows)


async def read_stream(session: AsyncSession, stream_id: str) -> tuple[str, str] | None:
    row = await session.get(StreamReplica, stream_id, populate_existing=True)
    return (row.channel_id, row.status) if row else None


async def learn_channel(db: Database, nc: NATS | None, channel_id: str, timeout: float) -> bool:
    """Read-your-writes: `channel.created` reaches the replica a moment after channels answered
    the create, so a replica miss asks channels (`channels.get`) and records its answer. False when
    channels does not know the channel or does not answer (the miss stands)."""
    if nc is None:
        return False
    try:
        reply = await ask(nc, CHANNEL_GET, ChannelGetRequest(channel_id=channel_id), timeout=timeout)
    except NoAnswer as exc:
        log.warning("channel lookup unanswered; answering from the replica",
                    extra={"channelId": channel_id, "reason": str(exc)})
        return False
    if not reply.found:
        return False
    async with db.session() as session:
        await record_channel(session, reply.channel, reply.updated_at)
        await session.commit()
    return True


class PgReplicas:
    """Loads cache entries from the replicas in chat's database (the chat API's source)."""

    def __init__(self, db: Database, *, lookup_timeout_seconds: float = 1.0):
        self.db = db
        self.lookup_timeout = lookup_timeout_seconds
        self.nc: NATS | None = None  # set by Moderation.start: channel misses ask channels

    async def load_channel(self, channel_id: str) -> ChannelState | None:
        async with self.db.session() as session:
            state = await read_channel(session, channel_id)
        if state is None and await learn_channel(self.db, self.nc, channel_id, self.lookup_timeout):
            async with self.db.session() as session:
                state = await read_channel(session, channel_id)
        return state

    async def load_follow(self, channel_id: str, user_id: str) -> bool:
        async with self.db.session() as session:
            return await read_follow(session, channel_id, user_id)

    async def load_profiles(self, user_ids) -> dict[str, Profile]:
        async with self.db.session() as session:
            return await read_profiles(session, user_ids)

    async def load_blocks(self, user_id: str) -> frozenset[str]:
        async with self.db.session() as session:
            return await read_blocks(session, user_id)

    async def load_stream(self, stream_id: str) -> tuple[str, str] | None:
        async with self.db.session() as session:
            return await read_stream(session, stream_id)


EventListener = Callable[[Envelope], None]


class Moderation:
    """Cached reads of the replicas, updated at once from core NATS.

    `start(nc)` subscribes; `stop()` unsubscribes. `add_listener(fn)` lets an edge react to the
    same events (e.g. close a banned user's sockets); `fn(event)` is called after the cache changed.
    """

    def __init__(self, source, *, ttl_seconds: float = 5.0, lookup_timeout_seconds: float = 1.0):
        # where entries are loaded from: the replicas in PostgreSQL (the chat API), or anything
        # with the same five loads (the edges' JetStream KV snapshots, chat_service.edge.natsstate)
        self.source = (PgReplicas(source, lookup_timeout_seconds=lookup_timeout_seconds)
                       if isinstance(source, Database) else source)
        self.ttl = ttl_seconds
        self._channels = _Ttl(ttl_seconds, 20_000)   # channel id -> ChannelState | None
        self._follows = _Ttl(ttl_seconds)            # (channel id, user id) -> bool
        self._profiles = _Ttl(ttl_seconds)           # user id -> Profile | None
        self._blocks = _Ttl(ttl_seconds)             # blocker id -> frozenset of blocked ids
        self._streams = _Ttl(ttl_seconds)            # stream id -> (channel id, status) | None
        self._subs: list = []
        self._listeners: list[EventListener] = []
        self._loading: dict[str, asyncio.Future] = {}
        self._refreshing: set[asyncio.Task] = set()

    # -- lifecycle
    async def start(self, nc: NATS) -> None:
        if isinstance(self.source, PgReplicas):
            self.source.nc = nc
        for subject in ("channel.>", "user.>", "stream.>", "subscription.>"):
            self._subs.append(await nc.subscribe(subject, cb=self._on_core_message))

    async def stop(self) -> None:
        for task in list(self._refreshing):
            task.cancel()
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:
                pass
        self._subs.clear()

    def add_listener(self, fn: EventListener) -> None:
        self._listeners.append(fn)

    async def _on_core_message(self, msg) -> None:
        try:
            event = parse_event(msg.data)
        except Exception:
            return  # not ours to judge; the durable consumer dead-letters it
        self.apply(event)

    # -- reads
    async def channel(self, channel_id: str) -> ChannelState | None:
        """The room's state, or None for a channel chat has not heard of.

        A known room whose entry expired is answered from the entry while it reloads in the
        background (stale-while-revalidate): events keep the entry current, the reload is only the
        net under a lost core event, and no send of a busy room waits for it every TTL."""
        hit = self._channels.get_even_expired(channel_id)
        if hit is not None:
            if hit[0] >= time.monotonic():
                return hit[1]
            if hit[1] is not None:
                if channel_id not in self._loading:
                    self._refresh(channel_id)
                return hit[1]
        return await self._load_channel(channel_id)

    def _refresh(self, channel_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._load_channel(channel_id))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # the stale entry stays; the next read past its expiry tries again
            log.warning("channel state reload failed", extra={"error": repr(task.exception())})

    async def _load_channel(self, channel_id: str) -> ChannelState | None:
        # one load per channel at a time: a burst of joins to a cold room hits the database once
        pending = self._loading.get(channel_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._loading[channel_id] = future
        try:
            state = await self.source.load_channel(channel_id)
            # "no such channel" is remembered briefly: a channel created a moment ago must not
            # stay unknown for a whole TTL if its core event raced the replica's commit
            self._channels.put(channel_id, state, None if state is not None else NEGATIVE_TTL)
            future.set_result(state)
            return state
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._loading.pop(channel_id, None)

    async def is_follower(self, channel_id: str, user_id: str) -> bool:
        key = (channel_id, user_id)
        hit = self._follows.get(key)
        if hit is not None:
            return hit[1]
        follows = await self.source.load_follow(channel_id, user_id)
        self._follows.put(key, follows)
        return follows

    async def profile(self, user_id: str) -> Profile | None:
        hit = self._profiles.get(user_id)
        if hit is not None:
            return hit[1]
        profile = (await self.source.load_profiles([user_id])).get(user_id)
        self._profiles.put(user_id, profile)
        return profile

    async def profiles(self, user_ids) -> dict[str, Profile]:
        """Several profiles in one query (for history and reports)."""
        out, missing = {}, []
        for uid in set(user_ids):
            hit = self._profiles.get(uid)
            if hit is not None:
                if hit[1] is not None:
                    out[uid] = hit[1]
            else:
                missing.append(uid)
        if missing:
            found = await self.source.load_profiles(missing)
            for uid in missing:
                self._profiles.put(uid, found.get(uid))
            out.update(found)
        return out

    async def blocked_users(self, user_id: str) -> frozenset[str]:
        """Ids of the users `user_id` blocked (their messages are hidden from `user_id`)."""
        hit = self._blocks.get(user_id)
        if hit is not None:
            return hit[1]
        blocked = await self.source.load_blocks(user_id)
        self._blocks.put(user_id, blocked)
        return blocked

    async def stream(self, stream_id: str) -> tuple[str, str] | None:
        """(channel id, status) of a stream, or None when chat has not heard of it."""
        hit = self._streams.get(stream_id)
        if hit is not None:
            return hit[1]
        value = await self.source.load_stream(stream_id)
        self._streams.put(stream_id, value, None if value is not None else NEGATIVE_TTL)
        return value

    # -- immediate updates
    def apply(self, event: Envelope) -> None:
        """Change the cached state as `event` will change the replicas (idempotent)."""
        t, data = event.type, event.data
        try:
            self._apply(t, data, event.time)
        except Exception:
            log.exception("moderation cache update failed; dropping the entry", extra={"eventType": t})
            channel_id = getattr(data, "channel_id", None) or getattr(data, "id", None)
            if channel_id:
                self._channels.drop(channel_id)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("moderation listener failed", extra={"eventType": t})

    def _apply(self, t: str, data, at: datetime | None = None) -> None:
        def channel(fn):
            self._channels.update_if_present(data.channel_id, lambda st: (fn(st), st)[1] if st else st)

        def member(kind: str, fn):
            channel(lambda st: fn(st) if st.newer(kind, data.user_id, at) else None)

        if t in (s.CHANNEL_CREATED, s.CHANNEL_UPDATED) and isinstance(data, ch.Channel):
            hit = self._channels.get(data.id)
            if hit is not None and hit[1] is not None:
                hit[1].owner_id, hit[1].slug = data.owner_id, data.slug
            elif hit is not None and t == s.CHANNEL_CREATED:
                # known as missing: it is new, so it has no moderators, filters or bans yet (a
                # channel that is merely not cached is loaded from the replica instead: a
                # republished old channel.created must not wipe its state)
                self._channels.put(data.id, ChannelState(data.id, data.owner_id, data.slug))
            else:
                self._channels.drop(data.id)
        elif t == s.CHANNEL_FILTERS_UPDATED and isinstance(data, ch.ChannelFilters):
            filters = Filters.of(data.banned_words, data.profanity_filter, data.slow_mode_seconds,
                                 data.followers_only, data.subscribers_only)
            channel(lambda st: setattr(st, "filters", filters))
        elif t == s.CHANNEL_MODERATOR_ADDED and isinstance(data, ch.ChannelModerator):
            member("moderator", lambda st: st.moderators.add(data.user_id))
        elif t == s.CHANNEL_MODERATOR_REMOVED and isinstance(data, ch.ChannelModerator):
            member("moderator", lambda st: st.moderators.discard(data.user_id))
        elif t == s.CHANNEL_USER_BANNED and isinstance(data, ch.ChannelBan):
            member("ban", lambda st: st.bans.__setitem__(data.user_id, data.until))
        elif t == s.CHANNEL_USER_UNBANNED and isinstance(data, ch.ChannelUnban):
            member("ban", lambda st: st.bans.pop(data.user_id, None))
        elif t in SUBSCRIPTION_EVENTS and isinstance(data, sb.Subscription):
            if _subscribed(data):
                entry = (str(data.tier), subscription_until(data))
                member("subscription", lambda st: st.subscribers.__setitem__(data.user_id, entry))
            else:
                member("subscription", lambda st: st.subscribers.pop(data.user_id, None))
        elif t in (s.CHANNEL_FOLLOWED, s.CHANNEL_UNFOLLOWED) and isinstance(data, ch.ChannelFollow):
            self._follows.set_fresh((data.channel_id, data.user_id), t == s.CHANNEL_FOLLOWED)
        elif t in (s.USER_REGISTERED, s.USER_UPDATED) and isinstance(data, us.UserProfile):
            self._profiles.set_fresh(data.user_id, Profile(data.username, data.display_name))
        elif t in (s.USER_BLOCKED, s.USER_UNBLOCKED) and isinstance(data, us.UserBlock):
            def change(blocked: frozenset) -> frozenset:
                return blocked | {data.blocked_id} if t == s.USER_BLOCKED else blocked - {data.blocked_id}
            self._blocks.update_if_present(data.blocker_id, change)
        elif t in STREAM_EVENTS and isinstance(data, st.Stream):
            status = str(data.status)
            known = self._streams.get(data.id)
            if known is not None and known[1] is not None and \
                    _STATUS_RANK.get(known[1][1], 0) > _STATUS_RANK.get(status, 0):
                return
            self._streams.set_fresh(data.id, (data.channel_id, status))

            def live(st: ChannelState) -> None:
                if status == "LIVE":
                    st.live_stream_id = data.id
                elif st.live_stream_id == data.id:
                    st.live_stream_id = None
            channel(live)
