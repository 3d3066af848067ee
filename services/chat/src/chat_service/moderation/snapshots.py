"""Moderation state for processes without a database: snapshots in a JetStream KV bucket.

The chat edges hold no PostgreSQL connection (the database's connection count must not grow with
edges, and a database outage must not stop chat). The replica consumer of the chat API writes,
in the same handler that changes a replica, the snapshot the edges read on a cache miss:

| key | value |
|---|---|
| `channel.<channelId>` | owner, slug, moderators, bans/timeouts, filters, live stream, subscribers (tier, end of a cancelled one) |
| `stream.<streamId>` | `[channelId, status]` |
| `follow.<channelId>.<userId>` | `1` / `0` |
| `blocks.<userId>` | the ids this user blocked |
| `user.<userId>` | `{username, displayName}` |

Ordering: the handler takes a transaction-scoped advisory lock on the snapshot's key after
changing the replica and before reading it back, so two events of one key (on two replicas of the
API sharing the durable) are read and put in commit order: the later one sees the earlier one's
committed change, and its put comes after the earlier put. A put that fails raises, the
transaction rolls back and the event is redelivered.
Immediate changes still travel over core NATS to every edge's cache (`Moderation.apply`).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

import orjson
from contracts import subjects as s
from contracts.envelope import Envelope
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from chat_service.moderation import service as mod
from chat_service.moderation.service import ChannelState, Filters, Profile

log = logging.getLogger("chat.moderation.snapshots")

BUCKET = s.CHAT_STATE_BUCKET
_KEY_TOKEN = re.compile(r"^[-_=a-zA-Z0-9]+$")


def usable(*ids: str) -> bool:
    return all(isinstance(i, str) and _KEY_TOKEN.match(i) for i in ids)


# ---- encoding --------------------------------------------------------------------------------

def encode_channel(st: ChannelState) -> bytes:
    f = st.filters
    return orjson.dumps({
        "ownerId": st.owner_id, "slug": st.slug, "moderators": sorted(st.moderators),
        "bans": {uid: until.isoformat() if until else None for uid, until in st.bans.items()},
        "filters": {"bannedWords": list(f.banned_words), "profanityFilter": f.profanity_filter,
                    "slowModeSeconds": f.slow_mode_seconds, "followersOnly": f.followers_only,
                    "subscribersOnly": f.subscribers_only},
        "liveStreamId": st.live_stream_id,
        "subscribers": {uid: [tier, until.isoformat() if until else None]
                        for uid, (tier, until) in st.subscribers.items()},
        "stamps": [[kind, uid, at.isoformat()] for (kind, uid), at in st.stamps.items()]})


def decode_channel(channel_id: str, raw: bytes) -> ChannelState:
    d = orjson.loads(raw)
    f = d["filters"]
    return ChannelState(
        channel_id=channel_id, owner_id=d["ownerId"], slug=d["slug"], moderators=set(d["moderators"]),
        filters=Filters.of(f["bannedWords"], f["profanityFilter"], f["slowModeSeconds"], f["followersOnly"],
                           f.get("subscribersOnly", False)),
        bans={uid: datetime.fromisoformat(u) if u else None for uid, u in d["bans"].items()},
        live_stream_id=d["liveStreamId"],
        # snapshots written before subscriptions have none
        subscribers={uid: (tier, datetime.fromisoformat(u) if u else None)
                     for uid, (tier, u) in d.get("subscribers", {}).items()},
        stamps={(kind, uid): datetime.fromisoformat(at) for kind, uid, at in d.get("stamps", ())})


# ---- writing (the chat API's replica consumer) ------------------------------------------------

async def _channel(session, data) -> list[tuple[str, bytes | None]]:
    cid = getattr(data, "channel_id", None) or data.id
    if not usable(cid):
        return []
    st = await mod.read_channel(session, cid)
    return [(f"channel.{cid}", encode_channel(st) if st else None)]


async def _stream(session, data) -> list[tuple[str, bytes | None]]:
    out = []
    if usable(data.id):
        known = await mod.read_stream(session, data.id)
        out.append((f"stream.{data.id}", orjson.dumps(list(known)) if known else None))
    return out + await _channel(session, data)


async def _follow(session, data) -> list[tuple[str, bytes | None]]:
    if not usable(data.channel_id, data.user_id):
        return []
    follows = await mod.read_follow(session, data.channel_id, data.user_id)
    return [(f"follow.{data.channel_id}.{data.user_id}", b"1" if follows else b"0")]


async def _blocks(session, data) -> list[tuple[str, bytes | None]]:
    if not usable(data.blocker_id):
        return []
    return [(f"blocks.{data.blocker_id}", orjson.dumps(sorted(await mod.read_blocks(session, data.blocker_id))))]


async def _user(session, data) -> list[tuple[str, bytes | None]]:
    if not usable(data.user_id):
        return []
    p = (await mod.read_profiles(session, [data.user_id])).get(data.user_id)
    return [(f"user.{data.user_id}",
             orjson.dumps({"username": p.username, "displayName": p.display_name}) if p else None)]


# event type -> the snapshots it changes (read back from the replicas after the change)
SNAPSHOTS = {
    s.CHANNEL_CREATED: _channel, s.CHANNEL_UPDATED: _channel, s.CHANNEL_FILTERS_UPDATED: _channel,
    s.CHANNEL_MODERATOR_ADDED: _channel, s.CHANNEL_MODERATOR_REMOVED: _channel,
    s.CHANNEL_USER_BANNED: _channel, s.CHANNEL_USER_UNBANNED: _channel,
    s.CHANNEL_FOLLOWED: _follow, s.CHANNEL_UNFOLLOWED: _follow,
    s.USER_BLOCKED: _blocks, s.USER_UNBLOCKED: _blocks,
    s.USER_REGISTERED: _user, s.USER_UPDATED: _user,
    **{t: _channel for t in mod.SUBSCRIPTION_EVENTS},
    **{t: _stream for t in mod.STREAM_EVENTS},
}
# the keys an event's snapshots lock, in a fixed order (stream before channel): no deadlock
_LOCKS = {
    _channel: lambda d: [f"channel.{getattr(d, 'channel_id', None) or d.id}"],
    _stream: lambda d: [f"stream.{d.id}", f"channel.{d.channel_id}"],
    _follow: lambda d: [f"follow.{d.channel_id}.{d.user_id}"],
    _blocks: lambda d: [f"blocks.{d.blocker_id}"],
    _user: lambda d: [f"user.{d.user_id}"],
}


class ReplicaHandler:
    """The replica consumer's handler: change the replica, then put its snapshot (when `kv` is set)."""

    def __init__(self, runtime=None):
        self.runtime = runtime  # its JetStream connection exists once it started; None: no snapshots
        self.kv = None

    async def __call__(self, session: AsyncSession, event: Envelope) -> None:
        await mod.handle_event(session, event)
        reader = SNAPSHOTS.get(event.type)
        if reader is None or self.runtime is None:
            return
        if self.kv is None:
            self.kv = await open_bucket(self.runtime.js, self.runtime.settings.jetstream_replicas,
                                        configure=self.runtime.configures_streams)
        for key in _LOCKS[reader](event.data):
            await session.exec(text("SELECT pg_advisory_xact_lock(hashtext(:k))").bindparams(k=f"chat-state:{key}"))
        for key, value in await reader(session, event.data):
            if value is None:
                continue  # nothing known yet (an event before its channel.created): nothing to show
            await self.kv.put(key, value)


async def open_bucket(js, replicas: int = 1, *, configure: bool = True):
    """The bucket, created when missing and `configure` (the API and the edges may start in any
    order), or waited for (their NATS users may not create it: contracts.access)."""
    from servicekit.messaging import ensure_streams, patiently

    await ensure_streams(js, [], replicas, buckets=[s.CHAT_STATE], configure=configure)
    return await patiently(lambda: js.key_value(BUCKET), f"open the {BUCKET} bucket")


# ---- read-through for keys written before the bucket existed (the chat API answers) ------------

FILL_SUBJECT = s.CHAT_API_STATE
# only these: a missing channel or stream means "no such room" on the edge, and a deployment that
# predates the bucket has every channel missing. A missing follow/block/profile means "none", and
# asking for each would send a request per cold user to the API (its next change writes it).
FILLABLE = ("channel", "stream")


async def fill(db, kv, key: str, nc=None, lookup_timeout: float = 1.0) -> bytes | None:
    """Read one channel/stream snapshot from the replicas and put it (under the key's advisory
    lock, so it is ordered with the replica consumer's puts); None when the replicas know nothing.
    A channel the replica has not heard of yet is asked of channels first (read-your-writes)."""
    kind, _, ident = key.partition(".")
    if kind not in FILLABLE or not usable(ident):
        return None
    if kind == "channel" and nc is not None:
        async with db.session() as session:
            known = await session.get(mod.ChannelReplica, ident) is not None
        if not known:
            await mod.learn_channel(db, nc, ident, lookup_timeout)
    async with db.session() as session:
        await session.exec(text("SELECT pg_advisory_xact_lock(hashtext(:k))").bindparams(k=f"chat-state:{key}"))
        if kind == "channel":
            st = await mod.read_channel(session, ident)
            value = encode_channel(st) if st else None
        else:
            known = await mod.read_stream(session, ident)
            value = orjson.dumps(list(known)) if known else None
        if value is not None:
            await kv.put(key, value)
    return value


# ---- reading (the edges) -------------------------------------------------------------------------

class KvReplicas:
    """The Moderation cache's source on an edge: the snapshots above, no database."""

    def __init__(self, kv, nc=None, fill_timeout: float = 1.0):
        self.kv = kv
        self.nc = nc  # asks the chat API to fill a missing channel/stream key (None: never)
        self.fill_timeout = fill_timeout

    async def _get(self, key: str) -> bytes | None:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await self.kv.get(key)
            return entry.value or None
        except KeyNotFoundError:
            pass
        if self.nc is None or key.partition(".")[0] not in FILLABLE:
            return None
        try:
            reply = await self.nc.request(FILL_SUBJECT, key.encode(), timeout=self.fill_timeout)
        except Exception:  # no API answering: unknown for now (cached briefly as missing)
            return None
        return reply.data or None

    async def load_channel(self, channel_id: str) -> ChannelState | None:
        raw = await self._get(f"channel.{channel_id}") if usable(channel_id) else None
        return decode_channel(channel_id, raw) if raw else None

    async def load_follow(self, channel_id: str, user_id: str) -> bool:
        return usable(channel_id, user_id) and await self._get(f"follow.{channel_id}.{user_id}") == b"1"

    async def load_profiles(self, user_ids) -> dict[str, Profile]:
        out = {}
        for uid in user_ids:
            raw = await self._get(f"user.{uid}") if usable(uid) else None
            if raw:
                d = orjson.loads(raw)
                out[uid] = Profile(d["username"], d["displayName"])
        return out

    async def load_blocks(self, user_id: str) -> frozenset[str]:
        raw = await self._get(f"blocks.{user_id}") if usable(user_id) else None
        return frozenset(orjson.loads(raw)) if raw else frozenset()

    async def load_stream(self, stream_id: str) -> tuple[str, str] | None:
        raw = await self._get(f"stream.{stream_id}") if usable(stream_id) else None
        return tuple(orjson.loads(raw)) if raw else None
