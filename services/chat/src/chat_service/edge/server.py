"""The edge: accepts sockets, speaks API.md's chat protocol, fans rooms out, reports presence.

One process, one event loop (uvloop), no task per connection. Background work is a fixed set of
tasks: the presence loop (every `presence_interval_seconds`), the keepalive sweep, the NATS
clients' own tasks and one ordered consumer per room with local members.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime

import orjson
from contracts.catalog import subject_for
from contracts.envelope import make_event
from contracts.events.chat import ChatPresence
from contracts.subjects import CHAT_ROOM_TEMPLATE, STREAM_VIEWERS_ALL, STREAMS, is_valid_token
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from servicekit.app import ServiceRuntime
from servicekit.observability import exporting_spans
from servicekit.security import InvalidToken
from websockets.datastructures import Headers
from websockets.http11 import Response

from chat_service.edge import metrics
from chat_service.edge.config import EdgeSettings
from chat_service.edge.connection import CLOSE_GOING_AWAY, CLOSE_INTERNAL, OPENED, Connection
from chat_service.edge.core import ChatRejected, ChatUnavailable, build_chat_service, decode_room_event
from chat_service.edge.rooms import Change, Room
from chat_service.edge.user import EdgeUser, edge_user
from chat_service.edge.wire import event_frame, join_lines, text_frame

log = logging.getLogger("chat.edge")
_tracer = trace.get_tracer("chat.edge")

PONG = event_frame("pong")
ONLINE_KEY = "chat:online:{channelId}"
AUTHOR_HEADER = "Chat-Author"
_MAX_ID = 64
_MAX_NONCE = 100


def _http(status: int, reason: str, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), ("Connection", "close")])
    return Response(status, reason, headers, body)


class Edge:
    def __init__(self, settings: EdgeSettings, *, chat=None, jwks=None, decode=decode_room_event):
        self.settings = settings
        # no database: moderation state and history reach the edge over NATS (edge/natsstate.py)
        self.runtime = ServiceRuntime(settings, streams=STREAMS, uses_db=False, relay_outbox=False, jwks=jwks)
        self.chat = chat
        self.decode = decode
        self.origins = [*settings.allowed_origins, *([None] if settings.allow_missing_origin else [])]
        self.conns: set[Connection] = set()
        self.rooms: dict[str, Room] = {}
        self.by_user: dict[str, set[Connection]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.Server | None = None
        self.port: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self._subs: list = []
        self._stopping = False
        self.redis_ok = False

    # ---- lifecycle ---------------------------------------------------------------------------
    @property
    def nc(self):
        return self.runtime.nats

    @property
    def js(self):
        return self.runtime.js

    async def start(self) -> Edge:
        s = self.settings
        self.loop = asyncio.get_running_loop()
        await self.runtime.start()
        self.verifier = self.runtime.verifier
        if self.chat is None:
            self.chat = build_chat_service(self.runtime, s)
        starter = getattr(self.chat, "start", None)
        if starter is not None:
            await starter()
        nc = self.nc
        self._subs = [
            await nc.subscribe("stream.*", cb=self._on_stream_event),
            await nc.subscribe(STREAM_VIEWERS_ALL, cb=self._on_stream_event),
            await nc.subscribe("channel.user_banned", cb=self._on_ban),
            await nc.subscribe("channel.user_unbanned", cb=self._on_ban),
            await nc.subscribe("user.blocked", cb=self._on_block),
            await nc.subscribe("user.unblocked", cb=self._on_block),
        ]
        self.server = await self.loop.create_server(
            lambda: Connection(self), s.host, s.port, backlog=4096, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        self._loops = [asyncio.create_task(self._presence_loop(), name="edge-presence"),
                       asyncio.create_task(self._sweep_loop(), name="edge-keepalive")]
        log.info("chat edge started", extra={"port": self.port, "edge_id": s.edge_id})
        return self

    async def stop(self) -> None:
        self._stopping = True
        if self.server is not None:
            self.server.close()
        for conn in list(self.conns):
            conn.close(CLOSE_GOING_AWAY, "edge shutting down")
        for task in self._loops:
            task.cancel()
        if self._loops:
            # bounded: a loop stuck in a Redis or NATS call under load must not hold the shutdown
            _, stuck = await asyncio.wait(self._loops, timeout=3)
            if stuck:
                log.warning("edge loops did not stop in time", extra={"loops": [t.get_name() for t in stuck]})
        for room in list(self.rooms.values()):
            self.drop_room(room)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=3)
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:
                pass
        stopper = getattr(self.chat, "stop", None)
        if stopper is not None:
            await stopper()
        await self.runtime.stop()

    def spawn(self, coro) -> asyncio.Task:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- connections -------------------------------------------------------------------------
    def connected(self, conn: Connection) -> None:
        self.conns.add(conn)

    def disconnected(self, conn: Connection) -> None:
        self.detach(conn)
        self.conns.discard(conn)

    def opened(self, conn: Connection) -> None:
        conn.counted = True
        metrics.CONNECTIONS.inc()

    def detach(self, conn: Connection) -> None:
        """Forget everything about `conn` (it closed or is closing); idempotent."""
        if conn.room is not None:
            self.leave_room(conn)
        user = conn.user
        if user is not None:
            self._unindex(conn, user)  # conn.user is kept for logs
        if conn.counted:
            conn.counted = False
            metrics.CONNECTIONS.dec()

    def _unindex(self, conn: Connection, user: EdgeUser) -> None:
        conns = self.by_user.get(user.id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.by_user[user.id]

    def http_response(self, path: str) -> Response:
        if path == "/healthz":
            return _http(200, "OK", b'{"status":"ok"}', "application/json")
        if path == "/readyz":
            ready = not self._stopping and self.nc is not None and self.nc.is_connected
            body = orjson.dumps({"status": "ok" if ready else "unavailable",
                                 "checks": {"nats": ready, "redis": self.redis_ok}})
            return _http(200, "OK", body, "application/json") if ready else \
                _http(503, "Service Unavailable", body, "application/json")
        if path == "/metrics":
            return _http(200, "OK", generate_latest(), CONTENT_TYPE_LATEST)
        body = orjson.dumps({"type": "about:blank", "title": "Not Found", "status": 404,
                             "detail": "The chat edge serves GET /ws (WebSocket), /healthz, /readyz, /metrics."})
        return _http(404, "Not Found", body, "application/problem+json")

    # ---- client frames -----------------------------------------------------------------------
    def handle_now(self, conn: Connection, kind: str, message: dict):
        """Handle a frame that needs no I/O; None when it must go through `handle` (a task)."""
        handler = self._sync.get(kind)
        if handler is not None:
            handler(self, conn, message)
            return True
        if kind in self._async:
            return None
        conn.error("invalid", f"Unknown event type {kind[:40]!r}.")
        return True

    async def handle(self, conn: Connection, kind: str, message: dict) -> None:
        if self.handle_now(conn, kind, message) is None:
            await self._async[kind](self, conn, message)

    def on_ping(self, conn: Connection, message: dict) -> None:
        conn.write(PONG)

    async def on_auth(self, conn: Connection, message: dict) -> None:
        token = message.get("token")
        if not isinstance(token, str) or not token:
            conn.error("unauthorized", "`token` must be an access token.")
            return
        try:
            claims = await self.verifier.verify(token)
            if claims.get("typ") not in (None, "access"):
                raise InvalidToken("not an access token")
        except InvalidToken:
            conn.error("unauthorized", "The access token is invalid or expired.")
            return
        user = edge_user(claims)
        exp = float(claims["exp"])
        if conn.user is not None:
            if conn.user.id != user.id:
                conn.error("invalid", "This socket is signed in as another user; open a new one.")
            elif exp > conn.token_exp:
                conn.token_exp = exp  # a fresh token for the same user: it stays signed in longer
            return
        blocked = await self.chat.blocked_users(user.id)
        if conn.state != OPENED or conn.user is not None:
            return
        conn.user = user
        conn.token_exp = exp
        self.by_user.setdefault(user.id, set()).add(conn)
        self._set_blocked(conn, frozenset(blocked) if blocked else None)
        room = conn.room
        if room is not None:
            self._apply(room, room.signed_in(conn), user)

    def sign_out(self, conn: Connection) -> None:
        """The socket's token expired and no fresh `auth` came: it goes on as an anonymous reader
        (API.md: anonymous sockets read, cannot send), told so once with `chat:error unauthorized`."""
        user = conn.user
        if user is None:
            return
        room = conn.room
        if room is not None:
            self._apply(room, room.signed_out(conn), user)
        self._unindex(conn, user)
        conn.user = None
        conn.token_exp = math.inf
        conn.banned_until = 0.0
        self._set_blocked(conn, None)
        conn.error("unauthorized", "Your access token expired: send `auth` with a fresh one to chat again.")

    async def on_join(self, conn: Connection, message: dict) -> None:
        channel_id, stream_id, since = message.get("channelId"), message.get("streamId"), message.get("since")
        ids_ok = ((channel_id is None) != (stream_id is None)) and all(
            v is None or (isinstance(v, str) and len(v) <= _MAX_ID and is_valid_token(v))
            for v in (channel_id, stream_id))
        since_ok = since is None or (type(since) is int and since >= 0)
        if not ids_ok or not since_ok:
            conn.error("invalid", "chat:join needs `channelId` or `streamId`, and `since` a sequence number.")
            return
        try:
            info = await self.chat.resolve_room(channel_id=channel_id, stream_id=stream_id)
        except LookupError:
            conn.error("invalid", "No such channel or stream.")
            return
        if conn.state != OPENED:
            return
        if conn.room is not None:
            self.leave_room(conn)
        channel_id = info.channel_id
        room = self.rooms.get(channel_id)
        if room is None:
            room = self.rooms[channel_id] = Room(self, channel_id)
            metrics.ROOMS.set(len(self.rooms))
            self.spawn(room.open())
        conn.room = room
        conn.banned_until = 0.0
        room.begin_join(conn)
        try:
            await asyncio.shield(room.ready)
        except Exception:
            log.warning("room subscription failed", extra={"channel_id": channel_id})
            conn.close(CLOSE_INTERNAL, "chat unavailable, reconnect")
            return
        if conn.room is not room or conn.state != OPENED:
            return
        lines, high = await self._history_lines(conn, room, since)
        if conn.room is not room or conn.state != OPENED:
            return
        blocked = conn.blocked
        for batch in conn.stash:  # events that reached the room while we read the history
            for line, seq, author, _ in batch:
                if seq is not None and seq <= high and not line.startswith(b'{"type":"chat:deleted"'):
                    continue  # already in the history (a deletion is idempotent: always passed on)
                if blocked and author in blocked:
                    continue
                lines.append(line)
        if room.online_line is not None:
            lines.append(room.online_line)
        conn.write(text_frame(join_lines(lines)))
        self._apply(room, room.admit(conn), conn.user)

    async def _history_lines(self, conn: Connection, room: Room, since: int | None):
        """The chat:history line (+ missed deletions) and the highest sequence it covers."""
        blocked = conn.blocked or ()
        if since is not None:
            events, recovered = await self.chat.events_since(room.channel_id, since)
            if recovered:
                messages, extra, high = [], [], since
                for seq, kind, body in events:
                    high = max(high, seq)
                    if kind == "chat:message":
                        if (body.get("user") or {}).get("id") not in blocked:
                            messages.append(body)
                    else:
                        extra.append(orjson.dumps({"type": kind, **body}))
                head = orjson.dumps({"type": "chat:history", "messages": messages, "recovered": True})
                return [head, *extra], high
        messages = await room.history.get()
        high = max((m.get("seq") or 0 for m in messages), default=0)
        visible = [m for m in messages if (m.get("user") or {}).get("id") not in blocked]
        doc = {"type": "chat:history", "messages": visible}
        if since is not None:
            doc["recovered"] = False
        return [orjson.dumps(doc)], high

    def on_leave(self, conn: Connection, message: dict) -> None:
        self.leave_room(conn)

    async def on_send(self, conn: Connection, message: dict) -> None:
        nonce = message.get("nonce")
        if nonce is not None and not (isinstance(nonce, str) and 0 < len(nonce) <= _MAX_NONCE):
            conn.error("invalid", f"`nonce` must be a string of 1-{_MAX_NONCE} characters.")
            return
        user, room = conn.user, conn.room
        if user is None:
            conn.error("unauthorized", "Sign in to chat.", nonce)
            return
        if room is None or conn not in room.members:
            conn.error("invalid", "Join a room first.", nonce)
            return
        if conn.banned_until > time.time():
            if math.isinf(conn.banned_until):
                conn.error("banned", "You are banned from this chat.", nonce)
            else:
                conn.error("timed_out", "You are timed out in this chat.", nonce,
                           retry_after=round(conn.banned_until - time.time(), 1))
            return
        content = message.get("content")
        if not isinstance(content, str):
            conn.error("invalid", "`content` must be a string.", nonce)
            return
        try:
            if exporting_spans():
                # a chat message's trace starts here (a WebSocket frame carries no context); the
                # publish carries it to every edge's fan-out and to the persister
                with _tracer.start_as_current_span("chat:send", kind=trace.SpanKind.SERVER,
                                                   attributes={"chat.channel_id": room.channel_id}):
                    sent = await self.chat.send(user_id=user.id, username=user.username,
                                                channel_id=room.channel_id, content=content, nonce=nonce)
            else:
                # a span nobody exports still costs ~13 us per send (the SDK builds it anyway)
                sent = await self.chat.send(user_id=user.id, username=user.username,
                                            channel_id=room.channel_id, content=content, nonce=nonce)
        except ChatRejected as exc:
            conn.error(exc.code, exc.message, nonce, exc.retry_after)
            return
        except ChatUnavailable:
            # Not stored. Only this send failed (its Valkey check or its publish, inside a batch
            # that may have stored others), so the socket stays: the client resends the same nonce
            # after retryAfter, and the nonce makes the resend idempotent.
            conn.error("unavailable", "The message was not stored; resend it with the same nonce.",
                       nonce, retry_after=1.0)
            return
        conn.send_event("chat:ack", nonce=nonce, id=sent.id, seq=sent.seq)

    def on_typing(self, conn: Connection, message: dict) -> None:
        user, room = conn.user, conn.room
        if user is None or room is None or conn not in room.members:
            return  # typing from a reader or outside a room means nothing; not worth an error
        now = time.monotonic()
        if now - conn.typing_at < self.settings.typing_interval_seconds:
            return
        conn.typing_at = now
        line = b'{"type":"chat:typing","user":' + user.entry + b"}"
        self.spawn(self.publish_room_event(room.channel_id, line, author=user.id))

    _sync = {"ping": on_ping, "chat:typing": on_typing, "chat:leave": on_leave}
    _async = {"auth": on_auth, "chat:join": on_join, "chat:send": on_send}

    # ---- rooms and online users --------------------------------------------------------------
    def leave_room(self, conn: Connection) -> None:
        room = conn.room
        conn.room = None
        if room is not None:
            self._apply(room, room.leave(conn), conn.user)

    def _apply(self, room: Room, change: Change, user: EdgeUser | None) -> None:
        """Act on a membership transition the room reported (`user`: the socket's)."""
        if Change.FIRST_OF_USER in change:
            self.spawn(self._user_joined(room.channel_id, user))
        if Change.LAST_OF_USER in change:
            self.spawn(self._user_left(room.channel_id, user))
        if Change.EMPTY in change:
            self.drop_room(room)

    def drop_room(self, room: Room) -> None:
        if self.rooms.get(room.channel_id) is room:
            del self.rooms[room.channel_id]
            metrics.ROOMS.set(len(self.rooms))
        room.drop()
        self.spawn(self._retire(room))

    async def _retire(self, room: Room) -> None:
        await room.close()
        await self._publish_presence(room.channel_id, 0, 0)  # the room emptied: say so at once

    async def _user_joined(self, channel_id: str, user: EdgeUser) -> None:
        key = ONLINE_KEY.format(channelId=channel_id)
        try:
            added = await self.runtime.redis.zadd(key, {user.entry: time.time() + self.settings.online_ttl_seconds})
        except Exception:
            added = 1  # Redis is down: announce rather than stay silent
        if added:
            await self.publish_room_event(channel_id, b'{"type":"chat:user-joined","user":' + user.entry + b"}")

    async def _user_left(self, channel_id: str, user: EdgeUser) -> None:
        try:
            await self.runtime.redis.zrem(ONLINE_KEY.format(channelId=channel_id), user.entry)
        except Exception:
            pass
        await self.publish_room_event(channel_id, orjson.dumps({"type": "chat:user-left", "userId": user.id}))

    async def publish_room_event(self, channel_id: str, line: bytes, *, author: str | None = None) -> None:
        """An ephemeral room event (core NATS, not stored) to every edge with members in the room."""
        try:
            await self.nc.publish(CHAT_ROOM_TEMPLATE.format(channelId=channel_id), line,
                                  headers={AUTHOR_HEADER: author} if author else None)
        except Exception as exc:
            log.warning("room event not published", extra={"error": repr(exc)})

    # ---- events from other services ----------------------------------------------------------
    async def _on_stream_event(self, msg) -> None:
        try:
            data = orjson.loads(msg.data)["data"]
            room = self.rooms.get(data["channelId"])
            if room is None:
                return
            if msg.subject.startswith("stream.viewers."):
                room.push(orjson.dumps({"type": "stream:viewers", "streamId": data["streamId"],
                                        "count": data["count"]}))
            elif msg.subject != "stream.end_requested" and "status" in data:
                room.push(orjson.dumps({"type": "stream:status", "streamId": data["id"],
                                        "status": data["status"]}))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("unreadable stream event", extra={"subject": msg.subject})

    async def _on_ban(self, msg) -> None:
        try:
            data = orjson.loads(msg.data)["data"]
            channel_id, user_id = data["channelId"], data["userId"]
            until = data.get("until")
            until_ts = datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp() if until else math.inf
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            log.warning("unreadable ban event", extra={"subject": msg.subject})
            return
        banned = msg.subject == "channel.user_banned"
        for conn in list(self.by_user.get(user_id, ())):
            room = conn.room
            if room is None or room.channel_id != channel_id:
                continue
            if not banned:
                conn.banned_until = 0.0
            elif until_ts > time.time():
                conn.banned_until = until_ts
                if math.isinf(until_ts):
                    conn.error("banned", "You were banned from this chat.")
                else:
                    conn.error("timed_out", "You were timed out in this chat.",
                               retry_after=round(until_ts - time.time(), 1))

    async def _on_block(self, msg) -> None:
        try:
            data = orjson.loads(msg.data)["data"]
            blocker, blocked = data["blockerId"], data["blockedId"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        for conn in list(self.by_user.get(blocker, ())):
            current = set(conn.blocked or ())
            if msg.subject == "user.blocked":
                current.add(blocked)
            else:
                current.discard(blocked)
            self._set_blocked(conn, frozenset(current) or None)

    def _set_blocked(self, conn: Connection, blocked: frozenset | None) -> None:
        before = conn.blocked
        conn.blocked = blocked
        if conn.room is not None:
            conn.room.blocks_changed(conn, before)

    # ---- periodic work -----------------------------------------------------------------------
    async def _presence_loop(self) -> None:
        interval = self.settings.presence_interval_seconds
        while True:
            try:
                await self.presence_pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("presence pass failed", extra={"error": repr(exc)})
            await asyncio.sleep(interval)

    async def presence_pass(self) -> None:
        """Publish each room's counts, refresh its online list and push chat:users when it changed."""
        rooms = [r for r in self.rooms.values() if r.ready.done() and not r.ready.exception() and not r.dead]
        for room in rooms:
            await self._publish_presence(room.channel_id, len(room.members) + len(room.joining), len(room.users))
        if not rooms:
            return
        s = self.settings
        now = time.time()
        pipe = self.runtime.redis.pipeline(transaction=False)
        for room in rooms:
            key = ONLINE_KEY.format(channelId=room.channel_id)
            if room.users:
                pipe.zadd(key, {entry: now + s.online_ttl_seconds for _, entry in room.users.values()})
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            pipe.zrange(key, 0, s.online_list_limit - 1) if s.online_list_limit else pipe.echo(b"")
            pipe.expire(key, int(s.online_ttl_seconds * 3) + 1)
        try:
            results = await pipe.execute()
            self.redis_ok = True
        except Exception as exc:
            self.redis_ok = False
            log.warning("online list refresh failed", extra={"error": repr(exc)})
            return
        i = 0
        for room in rooms:
            i += 1 if room.users else 0
            count, members = results[i + 1], results[i + 2]
            i += 4
            users = b",".join(members) if isinstance(members, list) else b""
            line = b'{"type":"chat:users","count":%d,"users":[%s]}' % (count, users)
            if line != room.online_line and not room.dead:
                room.online_line = line
                room.push(line)

    async def _publish_presence(self, channel_id: str, connections: int, users: int) -> None:
        snapshot = ChatPresence(edge_id=self.settings.edge_id, channel_id=channel_id, connections=connections,
                                users=users, at=datetime.now(UTC))
        event = make_event("chat.presence", snapshot, source="chat-edge", subject=channel_id)
        try:
            await self.nc.publish(subject_for("chat.presence", channelId=channel_id), event.to_json_bytes())
        except Exception as exc:
            log.warning("presence not published", extra={"error": repr(exc)})

    async def _sweep_loop(self) -> None:
        s = self.settings
        period = max(0.05, min(1.0, s.ping_interval_seconds / 4, s.handshake_timeout_seconds / 4))
        while True:
            await asyncio.sleep(period)
            try:
                self.sweep()
            except Exception as exc:
                log.warning("keepalive sweep failed", extra={"error": repr(exc)})

    def sweep(self) -> None:
        """Ping quiet sockets, close dead ones and unfinished handshakes, sign out expired tokens."""
        s = self.settings
        now = time.monotonic()
        wall = time.time()
        sampled = 0
        for conn in list(self.conns):
            if conn.state == OPENED:
                if conn.token_exp <= wall:
                    self.sign_out(conn)
                idle = now - conn.last_seen
                if idle > s.idle_timeout_seconds:
                    conn.close(CLOSE_INTERNAL, "keepalive timeout")
                elif idle > s.ping_interval_seconds and not conn.pinged:
                    conn.pinged = True
                    conn.ws.send_ping(b"")
                    conn.flush_ws()
                if sampled < 200:
                    sampled += 1
                    metrics.SEND_BUFFER.observe(conn.transport.get_write_buffer_size())
            elif conn.state == 0 and now - conn.opened_at > s.handshake_timeout_seconds:
                conn.transport.abort()
