"""One client socket: an asyncio.Protocol driving websockets' sans-I/O ServerProtocol.

No task per connection: bytes arrive in `data_received`, which parses them with the
ServerProtocol (handshake, masking, control frames, the 4 KiB limit) and hands each text frame to
the edge. Only frames that must wait on I/O (auth, join, send, leave) run in a short-lived task,
one at a time per socket so a client's frames are handled in the order it sent them.

Outgoing chat frames bypass the ServerProtocol: the room writes one prebuilt frame to every
member's transport (see wire.py); control frames (close, ping, pong) go through it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from websockets.frames import TEXT, Frame
from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from chat_service.edge import metrics
from chat_service.edge.wire import event_frame

if TYPE_CHECKING:
    from websockets.http11 import Response

    from chat_service.edge.config import EdgeSettings
    from chat_service.edge.rooms import Room
    from chat_service.edge.user import EdgeUser

log = logging.getLogger("chat.edge")

# Close codes (documented in services/chat/README.md, "Chat edge").
CLOSE_GOING_AWAY = 1001       # the edge is shutting down: reconnect (to another edge) and resume
CLOSE_UNSUPPORTED = 1003      # binary or fragmented client frames
CLOSE_POLICY = 1008           # more client frames than the per-connection limit allows
CLOSE_TOO_BIG = 1009          # a client frame over 4 KiB (sent by the ServerProtocol itself)
CLOSE_INTERNAL = 1011         # keepalive timeout, or a failure on the edge: reconnect and resume
CLOSE_SLOW_CONSUMER = 1013    # unsent bytes exceeded the send buffer: reconnect and resume

CONNECTING, OPENED, CLOSING, CLOSED = 0, 1, 2, 3


class ConnectionHost(Protocol):
    """What a socket needs from the process that accepted it (the Edge): no more, so a
    connection never reaches into rooms or the chat core."""

    settings: EdgeSettings
    origins: list[str | None]

    def connected(self, conn: Connection) -> None: ...  # the TCP connection is up

    def opened(self, conn: Connection) -> None: ...  # the WebSocket handshake succeeded

    def detach(self, conn: Connection) -> None: ...  # closing: forget its room and user (idempotent)

    def disconnected(self, conn: Connection) -> None: ...  # gone

    def http_response(self, path: str) -> Response: ...  # a plain HTTP request (health, metrics)

    def handle_now(self, conn: Connection, kind: str, message: dict) -> bool | None: ...

    async def handle(self, conn: Connection, kind: str, message: dict) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task: ...


class Connection(asyncio.Protocol):
    __slots__ = (
        "abort_handle",
        "backlog",
        "banned_until",
        "blocked",
        "busy",
        "counted",
        "edge",
        "last_seen",
        "opened_at",
        "pinged",
        "room",
        "stash",
        "state",
        "token_at",
        "token_exp",
        "tokens",
        "transport",
        "typing_at",
        "user",
        "ws",
    )

    def __init__(self, edge: ConnectionHost):
        self.edge = edge
        self.transport: asyncio.Transport | None = None
        s = edge.settings
        self.ws = ServerProtocol(origins=edge.origins, max_size=s.max_client_frame_bytes)
        self.state = CONNECTING
        self.user: EdgeUser | None = None
        self.token_exp = math.inf  # wall-clock `exp` of the access token it signed in with
        self.room: Room | None = None
        self.blocked: frozenset[str] | None = None  # user ids whose chat this viewer hides
        now = time.monotonic()
        self.opened_at = now
        self.last_seen = now
        self.pinged = False
        self.tokens = float(s.client_frames_burst)
        self.token_at = now
        self.typing_at = 0.0
        self.banned_until = 0.0  # wall-clock seconds; inf for a permanent ban
        self.busy = False
        self.backlog: list[dict] | None = None
        self.stash: list | None = None  # room batches that arrived while joining
        self.abort_handle: asyncio.TimerHandle | None = None
        self.counted = False  # in the chat_edge_connections gauge

    # ---- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        # Above this many unsent bytes the transport calls pause_writing: a slow consumer.
        transport.set_write_buffer_limits(high=self.edge.settings.send_buffer_bytes)
        self.edge.connected(self)

    def data_received(self, data: bytes) -> None:
        if self.state >= CLOSING:
            return
        self.last_seen = time.monotonic()
        self.pinged = False
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                if event.opcode is TEXT and event.fin:
                    self._on_text(event.data)
                elif event.opcode <= 2:  # continuation or binary
                    self.close(CLOSE_UNSUPPORTED, "only unfragmented text frames")
                    return
                # ping, pong and close are answered by the ServerProtocol itself
            elif isinstance(event, Request):
                self._on_request(event)
        self.flush_ws()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self.flush_ws()
        return None

    def connection_lost(self, exc) -> None:
        self.state = CLOSED
        if self.abort_handle is not None:
            self.abort_handle.cancel()
            self.abort_handle = None
        self.edge.disconnected(self)

    def pause_writing(self) -> None:
        # Called inside transport.write (possibly in the middle of a room's write loop): act
        # after the loop, never re-enter it.
        if self.state == OPENED:
            asyncio.get_running_loop().call_soon(self._slow_consumer)

    def resume_writing(self) -> None:
        pass

    # ---- writing -----------------------------------------------------------------------------
    def write(self, frame: bytes) -> None:
        """One prebuilt server frame (wire.text_frame) to this socket."""
        if self.state == OPENED:
            self.transport.write(frame)

    def send_event(self, event_type: str, **fields) -> None:
        self.write(event_frame(event_type, **fields))

    def error(self, code: str, message: str, nonce=None, retry_after: float | None = None) -> None:
        fields = {"code": code, "message": message}
        if nonce is not None:
            fields["nonce"] = nonce
        if retry_after is not None:
            fields["retryAfter"] = retry_after
        self.send_event("chat:error", **fields)

    def flush_ws(self) -> None:
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            else:  # the ServerProtocol is done (close handshake or failed handshake): FIN
                self._shut()
                return
        if self.ws.state is not OPEN and self.state == OPENED and self.ws.close_sent is not None:
            self._shut()

    def _shut(self) -> None:
        if self.state < CLOSING:
            self.state = CLOSING
            self.edge.detach(self)
        if self.state < CLOSED and self.abort_handle is None:
            self.transport.close()  # flushes what is buffered, then closes
            self.abort_handle = asyncio.get_running_loop().call_later(
                self.edge.settings.close_timeout_seconds, self.transport.abort)

    def close(self, code: int, reason: str = "") -> None:
        """Close with a close frame (when the handshake is done); idempotent."""
        if self.state >= CLOSING:
            return
        if self.state == OPENED and self.ws.state is OPEN:
            self.ws.send_close(code, reason)
            self.state = CLOSING
            self.edge.detach(self)
            for chunk in self.ws.data_to_send():
                if chunk:
                    self.transport.write(chunk)
        self._shut()

    def _slow_consumer(self) -> None:
        if self.state == OPENED:
            metrics.SLOW_CONSUMERS.inc()
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer")

    # ---- reading -----------------------------------------------------------------------------
    def _on_request(self, request: Request) -> None:
        path = request.path.split("?", 1)[0]
        ws = self.ws
        if path == "/ws":
            response = ws.accept(request)  # checks the Origin allowlist (403 otherwise)
        else:
            response = self.edge.http_response(path)
        ws.send_response(response)
        if response.status_code == 101:
            self.state = OPENED
            self.edge.opened(self)

    def _on_text(self, data: bytes) -> None:
        s = self.edge.settings
        now = self.last_seen
        self.tokens = min(float(s.client_frames_burst), self.tokens + (now - self.token_at) * s.client_frames_per_second)
        self.token_at = now
        if self.tokens < 1.0:
            self.close(CLOSE_POLICY, "too many messages")
            return
        self.tokens -= 1.0
        try:
            message = orjson.loads(data)
            kind = message["type"]
            if not isinstance(kind, str):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.error("invalid", "Each frame is one JSON object with a string `type`.")
            return
        if self.busy:
            if len(self.backlog) >= s.client_backlog:
                self.close(CLOSE_POLICY, "too many messages in flight")
                return
            self.backlog.append(message)
            return
        handled = self.edge.handle_now(self, kind, message)
        if handled is None:  # needs I/O: run it (and whatever follows it) in order, in one task
            self.busy = True
            self.backlog = []
            self.edge.spawn(self._drain(message))

    async def _drain(self, message: dict) -> None:
        try:
            while True:
                try:
                    await self.edge.handle(self, message["type"], message)
                except Exception:
                    log.exception("chat frame failed", extra={"type": str(message.get("type"))[:40]})
                    self.close(CLOSE_INTERNAL, "edge error, reconnect")
                    return
                if not self.backlog or self.state != OPENED:
                    return
                message = self.backlog.pop(0)
        finally:
            self.busy = False
            self.backlog = None
