"""A room on one edge: its subscriptions, its members and the coalescing fan-out.

Each room with local members has ONE ordered JetStream push consumer on `chat.*.<channelId>`
(messages and deletions, in stream order, with their stream sequence) and one core-NATS
subscription on `chat.room.<channelId>` (typing, joined/left). Every event is encoded once into
a JSON line; the lines of one tick become one frame (lines joined by "\\n"), built once and written
to every member's transport in one synchronous loop. A room that was quiet for a whole tick is
flushed on the next loop iteration, so a lone message is not delayed by the tick. The tick grows
with the room's local membership (`room_writes_per_second`, `max_tick_seconds`): what a frame
costs is the write to each member, so a busy big room sends fewer, fuller frames.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from contracts.subjects import CHAT_ROOM_TEMPLATE
from nats.js.api import DeliverPolicy
from opentelemetry.trace import SpanKind
from servicekit.messaging import handling_span
from servicekit.observability import exporting_spans

from chat_service.edge import metrics
from chat_service.edge.wire import join_lines, text_frame

if TYPE_CHECKING:
    from chat_service.edge.config import EdgeSettings
    from chat_service.edge.connection import Connection
    from chat_service.edge.user import EdgeUser

log = logging.getLogger("chat.edge")


class Change(enum.Flag):
    """What a membership change means beyond the room (returned by join/leave; the edge acts)."""

    NONE = 0
    FIRST_OF_USER = enum.auto()  # the user's first socket in this room on this edge: announce them
    LAST_OF_USER = enum.auto()   # their last one left: say they left
    EMPTY = enum.auto()          # no local member or joiner left: drop the room


class NextRead:
    """A read shared by everyone who asked for it before it started: at most one runs at a time;
    callers arriving while one runs share the next, which starts when the running one ends.

    A join's history must be read *after* the joiner began stashing the room's live events (else
    events between the read and the join are lost to it), so a read already running cannot be
    shared; the next one can. A join storm on a room then costs one read per read-duration
    instead of one per joiner.
    """

    __slots__ = ("_busy", "_queued", "_read")

    def __init__(self, read):
        self._read = read
        self._queued: asyncio.Future | None = None
        self._busy = False

    async def get(self):
        waiting = self._queued
        if waiting is None:
            waiting = self._queued = asyncio.get_running_loop().create_future()
            # nobody else may be left to retrieve a failure
            waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
            if not self._busy:
                self._start()
        return await asyncio.shield(waiting)

    def _start(self) -> None:
        waiting, self._queued = self._queued, None
        self._busy = True
        task = asyncio.ensure_future(self._read())

        def finished(t: asyncio.Task) -> None:
            self._busy = False
            if t.cancelled():
                waiting.cancel()
            elif t.exception() is not None:
                waiting.set_exception(t.exception())
            else:
                waiting.set_result(t.result())
            if self._queued is not None:
                self._start()

        task.add_done_callback(finished)


class RoomHost(Protocol):
    """What a room needs from the process that holds it (the Edge)."""

    settings: EdgeSettings
    loop: asyncio.AbstractEventLoop
    chat: Any  # history(channel_id, limit=...)
    decode: Callable  # a CHAT stream message -> (seq, event type, body)

    @property
    def js(self) -> Any: ...

    @property
    def nc(self) -> Any: ...


def tick_for(members: int, settings: EdgeSettings) -> float:
    """The shortest tick that keeps `members` sockets within the room's write budget."""
    return max(settings.tick_seconds, min(settings.max_tick_seconds, members / settings.room_writes_per_second))


class Room:
    __slots__ = (
        "_targets",
        "_writes",
        "blockers",
        "channel_id",
        "dead",
        "handle",
        "history",
        "host",
        "joining",
        "last_flush",
        "members",
        "online_line",
        "pending",
        "ready",
        "room_sub",
        "sub",
        "tick",
        "users",
    )

    def __init__(self, host: RoomHost, channel_id: str):
        self.host = host
        self.channel_id = channel_id
        self.members: set[Connection] = set()
        self.joining: set[Connection] = set()  # waiting for their history; batches are stashed
        self._targets: list[Connection] | None = None
        # the members' bound `transport.write`s, built with _targets: the common flush is one call
        # per socket and nothing else (no attribute lookups, no state checks: a closing socket
        # leaves the room before its transport goes)
        self._writes: list[Callable[[bytes], None]] = []
        self.blockers = 0  # members with a non-empty block list: 0 means no per-viewer copy at all
        # (line, seq | None, author id | None, JetStream time in seconds | None)
        self.pending: list[tuple[bytes, int | None, str | None, float | None]] = []
        self.handle: asyncio.Handle | None = None
        self.last_flush = 0.0
        self.tick = host.settings.tick_seconds
        self.sub = None
        self.room_sub = None
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        # signed-in users on this edge: id -> [local sockets, their online-list entry]
        self.users: dict[str, list] = {}
        self.online_line: bytes | None = None
        self.dead = False
        # the last messages for joiners without `since`, one read shared by a burst of joins
        self.history = NextRead(lambda: host.chat.history(channel_id, limit=host.settings.history_limit))

    # ---- subscriptions -----------------------------------------------------------------------
    async def open(self) -> None:
        """Subscribe before any member reads history, so nothing falls between the two."""
        host = self.host
        try:
            self.sub = await host.js.subscribe(
                f"chat.*.{self.channel_id}", stream="CHAT", cb=self._on_chat, ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW)
            self.room_sub = await host.nc.subscribe(CHAT_ROOM_TEMPLATE.format(channelId=self.channel_id),
                                                   cb=self._on_room_event)
        except Exception as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)
            await self.close()
            return
        if self.dead:  # everyone left while we subscribed
            await self.close()
        if not self.ready.done():
            self.ready.set_result(None)

    async def close(self) -> None:
        for sub in (self.sub, self.room_sub):
            if sub is not None:
                try:
                    await sub.unsubscribe()
                except Exception:
                    pass
        self.sub = self.room_sub = None

    async def _on_chat(self, msg) -> None:
        try:
            seq, kind, body = self.host.decode(msg)
        except Exception:
            log.warning("undecodable chat event", extra={"subject": msg.subject})
            return
        if kind == "chat:message":
            line = orjson.dumps({"type": kind, "message": body})
            user = body.get("user") or {}
            author = user.get("id")
        else:
            line = orjson.dumps({"type": kind, **body})
            author = None
        try:
            ts = msg.metadata.timestamp.timestamp()
        except Exception:
            ts = None
        if exporting_spans():
            # the sender's trace (from the stored message's headers) gets this edge's fan-out; the
            # span covers decode and enqueue, the socket writes follow on the next tick
            with handling_span(msg, f"fan out {kind}", kind=SpanKind.CONSUMER, **{"chat.seq": seq}):
                self.push(line, seq, author, ts)
            return
        self.push(line, seq, author, ts)

    async def _on_room_event(self, msg) -> None:
        # already one encoded line, published by an edge (see Edge.publish_room_event)
        author = msg.headers.get("Chat-Author") if msg.headers else None
        self.push(msg.data, None, author, None)

    # ---- membership --------------------------------------------------------------------------
    def targets(self) -> list[Connection]:
        targets = self._targets
        if targets is None:
            targets = self._targets = list(self.members)
            self._writes = [conn.transport.write for conn in targets]
            self.tick = tick_for(len(targets), self.host.settings)
        return targets

    def begin_join(self, conn: Connection) -> None:
        """`conn` waits for its history: the room's batches are stashed for it meanwhile."""
        conn.stash = []
        self.joining.add(conn)

    def admit(self, conn: Connection) -> Change:
        """`conn` got its history and now receives the room's frames."""
        self.joining.discard(conn)
        conn.stash = None
        self.members.add(conn)
        self._targets = None
        if conn.blocked:
            self.blockers += 1
        return self._arrived(conn.user)

    def signed_in(self, conn: Connection) -> Change:
        """`conn` sent `auth` (a member counts as a user from now on; a joiner once admitted)."""
        return self._arrived(conn.user) if conn in self.members else Change.NONE

    def signed_out(self, conn: Connection) -> Change:
        """`conn` stops being its user (the token expired) and stays as a reader."""
        return self._departed(conn.user) if conn in self.members else Change.NONE

    def leave(self, conn: Connection) -> Change:
        """Forget `conn`."""
        change = Change.NONE
        if conn in self.members:
            self.members.discard(conn)
            self._targets = None
            if conn.blocked:
                self.blockers -= 1
            change = self._departed(conn.user)
        else:
            self.joining.discard(conn)
        conn.stash = None
        if not self.members and not self.joining:
            change |= Change.EMPTY
        return change

    def _arrived(self, user: EdgeUser | None) -> Change:
        if user is None:
            return Change.NONE
        entry = self.users.get(user.id)
        if entry is None:
            self.users[user.id] = [1, user.entry]
            return Change.FIRST_OF_USER
        entry[0] += 1
        return Change.NONE

    def _departed(self, user: EdgeUser | None) -> Change:
        entry = self.users.get(user.id) if user is not None else None
        if entry is None:
            return Change.NONE
        entry[0] -= 1
        if entry[0] > 0:
            return Change.NONE
        del self.users[user.id]
        return Change.LAST_OF_USER

    def blocks_changed(self, conn: Connection, before: frozenset | None) -> None:
        if conn in self.members:
            self.blockers += (1 if conn.blocked else 0) - (1 if before else 0)

    # ---- fan-out -----------------------------------------------------------------------------
    def push(self, line: bytes, seq: int | None = None, author: str | None = None,
             ts: float | None = None) -> None:
        if self.dead:
            return
        self.pending.append((line, seq, author, ts))
        if self.handle is None:
            loop = self.host.loop
            due = self.last_flush + self.tick
            now = loop.time()
            self.handle = loop.call_soon(self.flush) if now >= due else loop.call_at(due, self.flush)

    def flush(self) -> None:
        self.handle = None
        pending = self.pending
        if not pending or self.dead:
            return
        self.pending = []
        self.last_flush = self.host.loop.time()
        for conn in self.joining:
            conn.stash.append(pending)
        targets = self.targets()
        if not targets:
            return
        frame = text_frame(join_lines([p[0] for p in pending]) if len(pending) > 1 else pending[0][0])
        if self.blockers:
            self._write_filtered(targets, pending, frame)
        else:
            for write in self._writes:
                write(frame)
        n = len(targets)
        metrics.FRAMES.inc(n)
        metrics.DELIVERIES.inc(n * len(pending))
        now = time.time()
        for p in pending:
            if p[3] is not None:
                metrics.FANOUT_LATENCY.observe(max(0.0, now - p[3]))

    def _write_filtered(self, targets, pending, frame: bytes) -> None:
        # Only a viewer who blocked an author of this batch gets a copy without those lines.
        authors = {p[2] for p in pending if p[2] is not None}
        copies: dict[frozenset, bytes | None] = {}
        for conn in targets:
            blocked = conn.blocked
            hidden = blocked & authors if blocked else None
            if not hidden:
                conn.transport.write(frame)
                continue
            key = frozenset(hidden)
            copy = copies.get(key, b"")
            if copy == b"":
                lines = [p[0] for p in pending if p[2] not in hidden]
                copy = copies[key] = text_frame(join_lines(lines)) if lines else None
            if copy is not None:
                conn.transport.write(copy)

    def drop(self) -> None:
        """No local member left: stop fanning out (the subscriptions are closed by the caller)."""
        self.dead = True
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.pending = []
