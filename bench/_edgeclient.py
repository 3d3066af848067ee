"""A lean WebSocket client for the chat edge's tests and benchmarks (not production code: the
edge tests put bench/ on sys.path to import it).

One asyncio.Protocol per socket, no task per socket. It speaks just enough RFC 6455 for a chat
client: the upgrade handshake, unmasked server frames (text, ping, close), masked client text
frames. Three modes, picked per client:

- ``parse=True``: every event of every frame is decoded and queued (tests: ``await c.expect(...)``);
- counting only: ``deliveries`` counts ``chat:message`` events with ``bytes.count`` (no JSON);
- ``latency=True``: also records send-to-receive latency of messages whose content is
  ``bench_content()`` (a wall-clock nanosecond stamp), found with one regex over the frame.

Example (a benchmark room of 1,000 counting sockets):

    clients = [await connect("127.0.0.1", 8111, parse=False) for _ in range(1000)]
    for c in clients:
        c.send({"type": "chat:join", "channelId": channel_id})
    ...
    total = sum(c.deliveries for c in clients)
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import struct
import time

import orjson

_MESSAGE = b'"type":"chat:message"'
_STAMP = re.compile(rb'"content":"b(\d{19})')


def bench_content() -> str:
    """Message content that carries its send time, for latency measurement."""
    return f"b{time.time_ns()}"


def _mask(payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    if n == 0:
        return key
    repeated = (key * (n // 4 + 1))[:n]
    return key + (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + _mask(payload)


class HandshakeFailed(Exception):
    def __init__(self, status: int, head: bytes):
        super().__init__(f"handshake answered {status}")
        self.status = status
        self.head = head


class EdgeClient(asyncio.Protocol):
    def __init__(self, *, parse: bool = True, latency: bool = False, request: bytes = b""):
        self.parse = parse
        self.latency = latency
        self.transport: asyncio.Transport | None = None
        self._request = request
        self._buf = bytearray()
        self._open = False
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()  # -> (code, reason)
        self.events: asyncio.Queue | None = asyncio.Queue() if parse else None
        self.seen: list[dict] = []  # events skipped by expect(), in arrival order
        self.frames = 0
        self.deliveries = 0
        self.bytes = 0
        self.latencies: list[float] = []

    # ---- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            del buf[:end + 4]
            status = int(head.split(b" ", 2)[1])
            if status != 101:
                self.opened.set_exception(HandshakeFailed(status, head))
                self.transport.close()
                return
            self._open = True
            self.opened.set_result(None)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            at = pos + 2
            if n == 126:
                if size - at < 2:
                    break
                n = (buf[at] << 8) | buf[at + 1]
                at += 2
            elif n == 127:
                if size - at < 8:
                    break
                n = int.from_bytes(buf[at:at + 8], "big")
                at += 8
            if size - at < n:
                break
            payload = bytes(buf[at:at + n])
            pos = at + n
            self._frame(b0 & 0x0F, payload)
        if pos:
            del buf[:pos]

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result((1006, ""))

    # ---- frames ------------------------------------------------------------------------------
    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 1:
            self.frames += 1
            self.bytes += len(payload)
            self.deliveries += payload.count(_MESSAGE)
            if self.latency:
                now = time.time_ns()
                for m in _STAMP.finditer(payload):
                    self.latencies.append((now - int(m.group(1))) / 1e9)
            if self.parse:
                for line in payload.split(b"\n"):
                    self.events.put_nowait(orjson.loads(line))
        elif opcode == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if not self.closed.done():
                self.closed.set_result((code, payload[2:].decode("utf-8", "replace")))
            self.transport.write(client_frame(8, payload[:2]))
            self.transport.close()
        elif opcode == 9:
            self.transport.write(client_frame(10, payload))

    # ---- API ---------------------------------------------------------------------------------
    def send(self, event: dict) -> None:
        self.send_raw(orjson.dumps(event))

    def send_raw(self, payload: bytes, opcode: int = 1) -> None:
        if not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    async def expect(self, event_type: str, timeout: float = 5.0, **match) -> dict:
        """The first event of `event_type` (whose fields equal `match`) not taken yet, waiting for
        it when needed; events passed over are kept in `seen` for later calls."""
        def matches(event: dict) -> bool:
            return event.get("type") == event_type and all(event.get(k) == v for k, v in match.items())

        for i, event in enumerate(self.seen):
            if matches(event):
                return self.seen.pop(i)

        async def wait():
            while True:
                event = await self.events.get()
                if matches(event):
                    return event
                self.seen.append(event)

        return await asyncio.wait_for(wait(), timeout)

    def drain(self) -> list[dict]:
        """Events received and not yet taken, without waiting."""
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(8, struct.pack("!H", code)))
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(host: str, port: int, *, path: str = "/ws", origin: str | None = None,
                  parse: bool = True, latency: bool = False, timeout: float = 5.0) -> EdgeClient:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: EdgeClient(parse=parse, latency=latency, request=request), host, port),
        timeout)
    await asyncio.wait_for(client.opened, timeout)
    return client
