"""A minimal RTMP player: just enough of the protocol to hold a paused play open on nginx-rtmp.

The media gateway uses it to start nginx-rtmp's pull of a source *before* the encoder's first
frame (media_gateway.ingest.source_pull). It never decodes media: it plays, pauses as soon as the
play is confirmed, and then only answers the server's pings until it is closed.

Why not a library: the Python RTMP clients are unmaintained (python-librtmp, last release 2015,
blocking librtmp calls) or are servers (pyrtmp); what is needed here is the handshake, four AMF0
commands and the ping answer, a few dozen lines against the RTMP 1.0 specification.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from dataclasses import dataclass, field

CHUNK_SIZE = 4096  # what we announce for our own (tiny) messages; nginx-rtmp accepts up to 2^31
_HANDSHAKE_SIZE = 1536

# message types (RTMP 1.0, section 5.4 and 7.1)
_SET_CHUNK_SIZE = 1
_ABORT = 2
_USER_CONTROL = 4
_COMMAND_AMF0 = 20
_PING_REQUEST = 6
_PING_RESPONSE = 7
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only; the kernel resets it after each ACK


class RtmpError(Exception):
    """The server refused, closed or did not answer in time."""


# ---- AMF0 (the subset nginx-rtmp sends in commands) -------------------------------------------

def amf_encode(*values: object) -> bytes:
    out = bytearray()
    for value in values:
        _amf_write(out, value)
    return bytes(out)


def _amf_write(out: bytearray, value: object) -> None:
    if value is None:
        out.append(0x05)
    elif isinstance(value, bool):
        out += bytes((0x01, int(value)))
    elif isinstance(value, (int, float)):
        out.append(0x00)
        out += struct.pack(">d", float(value))
    elif isinstance(value, str):
        data = value.encode()
        out.append(0x02)
        out += struct.pack(">H", len(data)) + data
    elif isinstance(value, dict):
        out.append(0x03)
        for key, item in value.items():
            data = key.encode()
            out += struct.pack(">H", len(data)) + data
            _amf_write(out, item)
        out += b"\x00\x00\x09"
    else:
        raise TypeError(f"no AMF0 encoding for {type(value).__name__}")


def amf_decode(data: bytes) -> list[object]:
    values: list[object] = []
    pos = 0
    while pos < len(data):
        value, pos = _amf_read(data, pos)
        values.append(value)
    return values


def _amf_read(data: bytes, pos: int) -> tuple[object, int]:
    marker = data[pos]
    pos += 1
    if marker == 0x00:
        return struct.unpack_from(">d", data, pos)[0], pos + 8
    if marker == 0x01:
        return bool(data[pos]), pos + 1
    if marker == 0x02:
        (length,) = struct.unpack_from(">H", data, pos)
        return data[pos + 2:pos + 2 + length].decode(errors="replace"), pos + 2 + length
    if marker in (0x05, 0x06):  # null, undefined
        return None, pos
    if marker in (0x03, 0x08):  # object, ECMA array (whose 4-byte count is only a hint)
        if marker == 0x08:
            pos += 4
        obj: dict[str, object] = {}
        while True:
            (length,) = struct.unpack_from(">H", data, pos)
            pos += 2
            if length == 0 and data[pos] == 0x09:
                return obj, pos + 1
            key = data[pos:pos + length].decode(errors="replace")
            obj[key], pos = _amf_read(data, pos + length)
    if marker == 0x0A:  # strict array
        (count,) = struct.unpack_from(">I", data, pos)
        pos += 4
        items = []
        for _ in range(count):
            item, pos = _amf_read(data, pos)
            items.append(item)
        return items, pos
    raise RtmpError(f"unsupported AMF0 marker 0x{marker:02x}")


# ---- chunk stream -----------------------------------------------------------------------------

@dataclass
class _InboundChunkStream:
    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    payload: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Message:
    type_id: int
    stream_id: int
    payload: bytes

    @property
    def command(self) -> list[object]:
        return amf_decode(self.payload) if self.type_id == _COMMAND_AMF0 else []


class RtmpPlayer:
    """One play of `rtmp://host:port/<app>/<name>`, paused once the wanted status arrives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._in_chunk_size = 128
        self._streams: dict[int, _InboundChunkStream] = {}
        self._pump: asyncio.Task | None = None
        self._transaction = 1

    @classmethod
    async def play(cls, host: str, port: int, app: str, name: str, *, timeout: float) -> RtmpPlayer:
        """Connect, play `name`, pause it and return once the server confirmed the play.

        Raises RtmpError (refused, closed, an error status) or TimeoutError.
        """
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            player = cls(reader, writer)
            try:
                await player._handshake()
                await player._connect(app, f"rtmp://{host}:{port}/{app}")
                stream_id = await player._create_stream()
                await player._play(stream_id, name)
            except BaseException:
                player._writer.close()
                raise
        player._pump = asyncio.create_task(player._keep_alive(), name=f"rtmp-player-{name}")
        return player

    @property
    def closed(self) -> bool:
        return self._pump is None or self._pump.done()

    def when_closed(self, callback) -> None:
        """Call `callback()` once the connection is gone (closed here or by the server)."""
        if self._pump is None:
            callback()
        else:
            self._pump.add_done_callback(lambda _task: callback())

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except (asyncio.CancelledError, Exception):  # noqa: BLE001  closing: nothing left to report
                pass
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass

    # -- protocol steps -------------------------------------------------------------------------

    async def _handshake(self) -> None:
        # version 3, then C1 = time, four zero bytes (the "old" handshake: no digest), random
        c1 = struct.pack(">I", int(time.monotonic() * 1000) & 0xFFFFFFFF) + bytes(4) + os.urandom(_HANDSHAKE_SIZE - 8)
        self._writer.write(b"\x03" + c1)
        await self._writer.drain()
        s0 = await self._reader.readexactly(1)
        if s0 != b"\x03":
            raise RtmpError(f"unexpected RTMP version {s0[0]}")
        s1 = await self._reader.readexactly(_HANDSHAKE_SIZE)
        await self._reader.readexactly(_HANDSHAKE_SIZE)  # S2: the server's echo of C1
        self._ack_now()
        self._writer.write(s1)  # C2: echo of S1
        self._send(_SET_CHUNK_SIZE, 0, struct.pack(">I", CHUNK_SIZE), csid=2)
        await self._writer.drain()

    async def _connect(self, app: str, tc_url: str) -> None:
        await self._call("connect", {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tc_url})

    async def _create_stream(self) -> int:
        result = await self._call("createStream", None)
        if len(result) < 4 or not isinstance(result[3], float):
            raise RtmpError("createStream answered without a stream id")
        return int(result[3])

    async def _play(self, stream_id: int, name: str) -> None:
        self._send(_COMMAND_AMF0, stream_id, amf_encode("play", 0, None, name, -1000), csid=8)
        await self._writer.drain()
        while True:
            message = await self._read_message()
            command = message.command
            if not command or command[0] != "onStatus":
                continue
            info = command[3] if len(command) > 3 and isinstance(command[3], dict) else {}
            code = str(info.get("code", ""))
            if info.get("level") == "error" or code in ("NetStream.Play.StreamNotFound", "NetStream.Play.Failed"):
                raise RtmpError(f"play refused: {code}")
            if code == "NetStream.Play.Start":
                # no media is wanted here: the play exists only to hold the stream open
                self._send(_COMMAND_AMF0, stream_id, amf_encode("pause", 0, None, True, 0), csid=8)
                await self._writer.drain()
                return

    async def _call(self, name: str, argument: object) -> list[object]:
        self._transaction += 1
        transaction = float(self._transaction)
        self._send(_COMMAND_AMF0, 0, amf_encode(name, transaction, argument), csid=3)
        await self._writer.drain()
        while True:
            command = (await self._read_message()).command
            if len(command) >= 2 and command[1] == transaction:
                if command[0] != "_result":
                    raise RtmpError(f"{name} refused: {command[3] if len(command) > 3 else command[0]}")
                return command

    async def _keep_alive(self) -> None:
        """Answer pings (nginx-rtmp drops a silent client after ping + ping_timeout) until closed.

        The server closing the connection (its publisher dropped) simply ends this task."""
        try:
            while True:
                await self._read_message()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return

    # -- chunks ---------------------------------------------------------------------------------

    def _ack_now(self) -> None:
        """ACK at once: nginx-rtmp sets no TCP_NODELAY, so each of its small answers after the first
        waits for our ACK, which Linux delays by up to 40 ms (the play took 43 ms instead of 1.3)."""
        if _QUICKACK is None:
            return
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                pass

    def _send(self, type_id: int, stream_id: int, payload: bytes, *, csid: int) -> None:
        assert len(payload) <= CHUNK_SIZE, "larger messages would need chunking"
        header = bytes((csid & 0x3F,)) + struct.pack(">I", 0)[1:] + struct.pack(">I", len(payload))[1:]
        header += bytes((type_id,)) + struct.pack("<I", stream_id)
        self._writer.write(header + payload)

    async def _read_message(self) -> Message:
        """The next complete message; control messages are applied (and pings answered) on the way."""
        while True:
            message = await self._read_chunk()
            if message is None:
                continue
            if message.type_id == _SET_CHUNK_SIZE:
                self._in_chunk_size = struct.unpack(">I", message.payload[:4])[0] & 0x7FFFFFFF
            elif message.type_id == _ABORT:
                self._streams.pop(struct.unpack(">I", message.payload[:4])[0], None)
            elif message.type_id == _USER_CONTROL and message.payload[:2] == struct.pack(">H", _PING_REQUEST):
                self._send(_USER_CONTROL, 0, struct.pack(">H", _PING_RESPONSE) + message.payload[2:6], csid=2)
                await self._writer.drain()
            return message

    async def _read_chunk(self) -> Message | None:
        first = (await self._reader.readexactly(1))[0]
        fmt, csid = first >> 6, first & 0x3F
        if csid == 0:
            csid = 64 + (await self._reader.readexactly(1))[0]
        elif csid == 1:
            low, high = await self._reader.readexactly(2)
            csid = 64 + low + high * 256
        cs = self._streams.setdefault(csid, _InboundChunkStream())
        if fmt <= 2:
            raw = await self._reader.readexactly((11, 7, 3)[fmt])
            stamp = int.from_bytes(raw[0:3], "big")
            if fmt <= 1:
                cs.length = int.from_bytes(raw[3:6], "big")
                cs.type_id = raw[6]
            if fmt == 0:
                cs.stream_id = struct.unpack("<I", raw[7:11])[0]
            cs.extended = stamp == 0xFFFFFF
            if cs.extended:
                stamp = struct.unpack(">I", await self._reader.readexactly(4))[0]
            if fmt == 0:
                cs.timestamp = stamp
            else:
                cs.delta = stamp
                cs.timestamp += stamp
        elif cs.extended:
            await self._reader.readexactly(4)  # fmt 3 repeats the extended timestamp
        take = min(self._in_chunk_size, cs.length - len(cs.payload))
        cs.payload += await self._reader.readexactly(take)
        self._ack_now()
        if len(cs.payload) < cs.length:
            return None
        message = Message(cs.type_id, cs.stream_id, bytes(cs.payload))
        cs.payload = bytearray()
        return message
