"""The few calls of libsrt (Haivision's SRT library, Debian's libsrt1.5) the SRT listener needs.

No maintained Python binding exists on PyPI, and the one thing the listener must do that no SRT
tool offers is to see the caller's streamid (the stream key) *before* the connection is accepted,
so a wrong key is rejected in the handshake: libsrt's listen callback does exactly that. The
library is the one ffmpeg itself links (`ffmpeg -protocols` lists srt), so no new package.
Declarations follow /usr/include/srt/srt.h and access_control.h of libsrt 1.5.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import struct
import threading

LOG_CRIT = 2  # syslog's level numbers (srt_setloglevel)
SRT_ERROR = -1
SRT_INVALID_SOCK = -1
SRTS_LISTENING = 3
SRTS_CONNECTED = 5

SRTO_RCVSYN = 2
SRTO_REUSEADDR = 15
SRTO_LATENCY = 23
SRTO_STREAMID = 46
SRTO_IPV6ONLY = 54

# access_control.h: the reject reasons a caller is told (ffmpeg prints "Connection rejected")
SRT_REJX_BAD_REQUEST = 1400
SRT_REJX_FORBIDDEN = 1403
SRT_REJX_OVERLOAD = 1402
SRT_REJX_BAD_MODE = 1405

# the maximum payload of one SRT live-mode message (SRTO_PAYLOADSIZE's ceiling): 7 TS packets
MAX_MESSAGE = 1456

LISTEN_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_void_p, ctypes.c_char_p)

_LIBRARY_NAMES = ("srt-gnutls", "srt", "srt-openssl")
_lib: ctypes.CDLL | None = None
_lock = threading.Lock()


class SrtError(OSError):
    pass


def _find() -> str:
    for name in _LIBRARY_NAMES:
        path = ctypes.util.find_library(name)
        if path:
            return path
    # find_library needs ldconfig's cache; the Debian sonames are stable
    for soname in ("libsrt-gnutls.so.1.5", "libsrt.so.1.5", "libsrt-openssl.so.1.5"):
        try:
            ctypes.CDLL(soname)
            return soname
        except OSError:
            continue
    raise SrtError("libsrt not found (Debian: libsrt1.5-gnutls, which ffmpeg depends on)")


def lib() -> ctypes.CDLL:
    """The loaded library, started once per process (srt_startup)."""
    global _lib
    with _lock:
        if _lib is None:
            so = ctypes.CDLL(_find())
            so.srt_startup.restype = ctypes.c_int
            so.srt_create_socket.restype = ctypes.c_int
            so.srt_bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
            so.srt_listen.argtypes = [ctypes.c_int, ctypes.c_int]
            so.srt_listen_callback.argtypes = [ctypes.c_int, LISTEN_CALLBACK, ctypes.c_void_p]
            so.srt_accept.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            so.srt_accept.restype = ctypes.c_int
            so.srt_recvmsg.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            so.srt_close.argtypes = [ctypes.c_int]
            so.srt_setsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
            so.srt_getsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                           ctypes.POINTER(ctypes.c_int)]
            so.srt_getsockname.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            so.srt_getlasterror_str.restype = ctypes.c_char_p
            so.srt_setrejectreason.argtypes = [ctypes.c_int, ctypes.c_int]
            so.srt_getsockstate.argtypes = [ctypes.c_int]
            so.srt_setloglevel.argtypes = [ctypes.c_int]
            # libsrt writes its own warnings to stderr (a rejected caller is one): critical only,
            # the listener logs what happened in the service's JSON lines
            so.srt_setloglevel(LOG_CRIT)
            if so.srt_startup() < 0:
                raise SrtError("srt_startup failed")
            _lib = so
        return _lib


def last_error() -> str:
    return (lib().srt_getlasterror_str() or b"").decode(errors="replace")


def _check(result: int, what: str) -> int:
    if result == SRT_ERROR:
        raise SrtError(f"{what}: {last_error()}")
    return result


def _sockaddr(host: str, port: int) -> bytes:
    ip = ipaddress.ip_address(host)
    if ip.version == 4:  # struct sockaddr_in
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + ip.packed + bytes(8)
    # struct sockaddr_in6: family, port, flowinfo, address, scope id
    return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + ip.packed + struct.pack("=I", 0)


def peer_host(addr: int | None) -> str | None:
    """The IP address in a `struct sockaddr *` (the listen callback's peeraddr)."""
    if not addr:
        return None
    family = ctypes.c_uint16.from_address(addr).value
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(ctypes.string_at(addr + 4, 4)))
    if family == socket.AF_INET6:
        ip = ipaddress.IPv6Address(ctypes.string_at(addr + 8, 16))
        return str(ip.ipv4_mapped or ip)
    return None


class Socket:
    """An SRT socket handle (an int in libsrt's own table, not a file descriptor)."""

    def __init__(self, handle: int | None = None):
        self.lib = lib()
        self.handle = _check(self.lib.srt_create_socket(), "srt_create_socket") if handle is None else handle

    def set_int(self, option: int, value: int) -> None:
        v = ctypes.c_int(value)
        _check(self.lib.srt_setsockflag(self.handle, option, ctypes.byref(v), ctypes.sizeof(v)), "srt_setsockflag")

    def get_bytes(self, option: int, size: int = 512) -> bytes:
        buf = ctypes.create_string_buffer(size + 1)
        n = ctypes.c_int(size + 1)
        _check(self.lib.srt_getsockflag(self.handle, option, buf, ctypes.byref(n)), "srt_getsockflag")
        return buf.raw[:n.value]

    def bind(self, host: str, port: int) -> None:
        addr = _sockaddr(host, port)
        if len(addr) > 16:
            self.set_int(SRTO_IPV6ONLY, 0)
        _check(self.lib.srt_bind(self.handle, addr, len(addr)), f"srt_bind {host}:{port}")

    def port(self) -> int:
        buf = ctypes.create_string_buffer(128)
        n = ctypes.c_int(128)
        _check(self.lib.srt_getsockname(self.handle, buf, ctypes.byref(n)), "srt_getsockname")
        return struct.unpack("!H", buf.raw[2:4])[0]

    def listen(self, callback, backlog: int = 16) -> None:
        _check(self.lib.srt_listen_callback(self.handle, callback, None), "srt_listen_callback")
        _check(self.lib.srt_listen(self.handle, backlog), "srt_listen")

    def accept(self) -> Socket:
        """Blocks (without the GIL) until a caller the callback let in is connected."""
        buf = ctypes.create_string_buffer(128)
        n = ctypes.c_int(128)
        return Socket(_check(self.lib.srt_accept(self.handle, buf, ctypes.byref(n)), "srt_accept"))

    def recv(self, buf: ctypes.Array) -> int:
        """One live-mode message into `buf`; 0 or less: the connection is over."""
        return self.lib.srt_recvmsg(self.handle, buf, len(buf))

    def state(self) -> int:
        return self.lib.srt_getsockstate(self.handle)

    def close(self) -> None:
        self.lib.srt_close(self.handle)


def reject(handle: int, reason: int) -> None:
    lib().srt_setrejectreason(handle, reason)
