"""Bytes on the wire: server frames built once and written to every socket of a room.

Server-to-client frames are never masked (RFC 6455 5.1) and the edge negotiates no extension
(no permessage-deflate), so a frame's bytes do not depend on the socket: one `bytes` object is
written to all of a room's sockets.
"""

from __future__ import annotations

import struct

import orjson

_TEXT_FIN = 0x81


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame carrying `payload` (UTF-8 JSON lines)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _TEXT_FIN, 126, n) + payload
    return struct.pack("!BBQ", _TEXT_FIN, 127, n) + payload


def event_line(event_type: str, **fields) -> bytes:
    """One event as a JSON line (no newline): `{"type": ..., **fields}`."""
    return orjson.dumps({"type": event_type, **fields})


def event_frame(event_type: str, **fields) -> bytes:
    return text_frame(event_line(event_type, **fields))


def join_lines(lines: list[bytes]) -> bytes:
    return lines[0] if len(lines) == 1 else b"\n".join(lines)
