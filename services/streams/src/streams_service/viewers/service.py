"""Live viewer counts from the chat edges' presence snapshots.

Every chat edge publishes `chat.presence.<channelId>` (core NATS, not stored) now and then with
the number of sockets joined to that room on that edge. The latest snapshot per edge wins; an edge
not heard from for `presence_ttl_seconds` no longer counts (it died or lost its last viewer
without saying so). A channel's viewers are the sum over its edges.

A worker compares those sums with the LIVE streams' stored counts a few times a second; a stream
whose count changed gets `viewerCount` (and `peakViewers`) updated and `stream.viewers`
published, at most once per `viewers_publish_interval_seconds`. Both conditions are checked by
the UPDATE itself, so replicas of this service cannot publish more often between them; the event
carries the time that UPDATE decided at (`viewers_published_at`), so the spacing of the published
events is exactly the throttle's.

The comparison needs PostgreSQL only when something can differ: the totals changed since the
last look that found every LIVE stream agreeing, a stream was still owed its count (the throttle
held it back), or a stream went LIVE in this process (it starts at 0, and only this worker raises
a count: a transaction that ran `go_live` makes the next tick look once it has committed). Otherwise
it looks once every `viewers_recheck_seconds`: a stream another replica took LIVE whose counter
died before counting it, a count written from presence this replica never got. So with nobody
watching, or counts that do not move, a tick costs no query.

A count is superseded a second later, so it is not a domain event: it goes straight to
`stream.viewers.<streamId>` in the VIEWERS stream, which keeps only the latest per stream, not
through the outbox into the 7-day EVENTS stream and every consumer's inbox. A count lost to a
failed publish is replaced by the next change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import event as orm_event
from sqlalchemy import text
from sqlalchemy.orm import Session

from contracts.catalog import subject_for
from contracts.envelope import make_event, parse_event
from contracts.events.chat import ChatPresence
from contracts.events.streams import StreamViewers
from contracts.subjects import CHAT_PRESENCE_ALL
from servicekit.periodic import every

from streams_service.config import Settings
from streams_service.streams.service import SOURCE, WENT_LIVE

log = logging.getLogger("streams.viewers")


@dataclass
class _EdgeCount:
    connections: int
    at: datetime
    heard: float  # local monotonic time it arrived


class PresenceTracker:
    """Per channel, per edge: the latest count. Pure bookkeeping; `clock` is injectable."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.clock = clock
        self._rooms: dict[str, dict[str, _EdgeCount]] = {}

    def observe(self, snapshot: ChatPresence) -> bool:
        """Record one edge's snapshot; False when it is older than the one already kept."""
        edges = self._rooms.setdefault(snapshot.channel_id, {})
        known = edges.get(snapshot.edge_id)
        if known is not None and snapshot.at < known.at:
            return False
        edges[snapshot.edge_id] = _EdgeCount(snapshot.connections, snapshot.at, self.clock())
        return True

    def expire(self) -> None:
        oldest = self.clock() - self.ttl
        for channel_id in list(self._rooms):
            edges = self._rooms[channel_id]
            for edge_id in [e for e, c in edges.items() if c.heard < oldest]:
                del edges[edge_id]
            if not edges:
                del self._rooms[channel_id]

    def total(self, channel_id: str) -> int:
        oldest = self.clock() - self.ttl
        return sum(c.connections for c in self._rooms.get(channel_id, {}).values() if c.heard >= oldest)

    def channels(self) -> list[str]:
        return list(self._rooms)


def parse_presence(raw: bytes) -> ChatPresence | None:
    """A presence snapshot: the catalog's envelope, or (tolerated) the bare payload."""
    try:
        event = parse_event(raw)
    except Exception:
        try:
            return ChatPresence.model_validate_json(raw)
        except ValidationError:
            return None
    return event.data if isinstance(event.data, ChatPresence) else None


_UPDATE = text("""
    UPDATE streams
       SET viewer_count = :count,
           peak_viewers = GREATEST(peak_viewers, :count),
           viewers_published_at = now()
     WHERE id = :id AND status = 'LIVE' AND viewer_count <> :count
       AND (viewers_published_at IS NULL
            OR viewers_published_at <= now() - make_interval(secs => :interval))
 RETURNING id, channel_id, viewer_count, peak_viewers, viewers_published_at
""")


class ViewerCounter:
    """Subscribes to presence (core NATS) and keeps LIVE streams' viewer counts up to date."""

    __name__ = "streams-viewers"

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.tracker = PresenceTracker(settings.presence_ttl_seconds, clock)
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        # the totals (channels with viewers) the last look found every LIVE stream agreeing with;
        # None: look at the next tick
        self._agreed: dict[str, int] | None = None
        self._looked_at = float("-inf")
        self._went_live = 0  # transactions that took a stream LIVE, counted once committed
        self._on_commit = self._after_commit  # one object: event.remove needs the one listened with

    async def _on_message(self, msg) -> None:
        snapshot = parse_presence(msg.data)
        if snapshot is not None:
            self.tracker.observe(snapshot)

    def _totals(self) -> dict[str, int]:
        return {c: n for c in self.tracker.channels() if (n := self.tracker.total(c))}

    def _must_look(self, totals: dict[str, int]) -> bool:
        return self._agreed != totals or self.clock() - self._looked_at >= self.settings.viewers_recheck_seconds

    def _after_commit(self, session: Session) -> None:
        if session.info.get(WENT_LIVE):
            self._went_live += 1
            self._agreed = None

    async def tick(self, db, js=None) -> int:
        """Compare totals with stored counts once (when they can differ); returns how many
        streams were updated. The counts are published (to `js`) after the commit, so none
        announces an uncommitted count."""
        self.tracker.expire()
        totals = self._totals()
        if not self._must_look(totals):
            return 0
        self._agreed = None  # until this look has finished and found nothing owed
        went_live = self._went_live
        decided, owed = [], False
        async with db.session() as session:
            live = (await session.exec(text(
                "SELECT id, channel_id, viewer_count FROM streams WHERE status = 'LIVE'"))).all()
            for stream_id, channel_id, stored in live:
                count = totals.get(channel_id, 0)
                if count == stored:
                    continue
                row = (await session.exec(_UPDATE.bindparams(
                    id=stream_id, count=count,
                    interval=float(self.settings.viewers_publish_interval_seconds)))).first()
                if row is None:
                    owed = True  # published less than a second ago (or no longer LIVE): next tick
                    continue
                decided.append(row)
            await session.commit()
        self._looked_at = self.clock()
        # a stream that went LIVE during the look may have committed after its SELECT: look again
        if not owed and went_live == self._went_live:
            self._agreed = totals
        if js is not None:
            for row in decided:
                await self._publish(js, row)
        return len(decided)

    async def _publish(self, js, row) -> None:
        event = make_event("stream.viewers", StreamViewers(
            stream_id=str(row.id), channel_id=row.channel_id, count=row.viewer_count, peak=row.peak_viewers),
            source=SOURCE, subject=str(row.id), time=row.viewers_published_at)
        try:
            await js.publish(subject_for("stream.viewers", streamId=str(row.id)), event.to_json_bytes(),
                             headers={"Nats-Msg-Id": event.id})
        except Exception as exc:  # the next change publishes again
            log.warning("viewer count not published", extra={"streamId": str(row.id), "error": repr(exc)})

    async def __call__(self, runtime) -> None:
        sub = await runtime.nats.subscribe(CHAT_PRESENCE_ALL, cb=self._on_message)
        # every session of the process (AsyncSession commits through its sync Session)
        orm_event.listen(Session, "after_commit", self._on_commit)
        self.ready.set()
        try:
            await every(self.settings.viewers_tick_seconds, lambda: self.tick(runtime.db, runtime.js),
                        self._stop, log=log, failed="viewer count pass failed")
        finally:
            orm_event.remove(Session, "after_commit", self._on_commit)
            try:
                await sub.unsubscribe()
            except Exception:
                pass

    def stop(self) -> None:
        self._stop.set()
