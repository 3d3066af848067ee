"""SRT ingest: a libsrt listener beside the node's nginx-rtmp that relays each publish into it.

The caller's streamid is the stream key (OBS: `srt://host:port?streamid=KEY`; the SRT Access
Control form `#!::r=KEY,m=publish` is read too). The listen callback checks the key's shape and asks
channels (`channels.ingest.authorize`, as on_publish does) *during the handshake*, so a wrong key
is a rejected connection (SRT_REJX_FORBIDDEN), never a stream. An accepted connection's MPEG-TS is
piped into one `ffmpeg -c copy` per publish that publishes it as RTMP to the node's own nginx-rtmp
under the same key: from there on_publish, the renditions, LL-HLS, recording, thumbnails, the
session lifecycle and revocations are the RTMP path's, unchanged (docs/srt.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import logging
import subprocess
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from media_gateway.config import Settings
from media_gateway.ingest.service import Refused, check_key_shape
from media_gateway.srt import libsrt

log = logging.getLogger("media_gateway.srt")

# (key, client address) -> None, or raises Refused; runs on the service's event loop
Authorizer = Callable[[str, "str | None"], Awaitable[None]]


class BadStreamId(Refused):
    pass


def key_from_streamid(streamid: str) -> str:
    """The stream key in a caller's streamid: the whole string, or the `r` of the SRT Access
    Control syntax (`#!::r=KEY,m=publish`); any mode but publish is refused."""
    if not streamid.startswith("#!::"):
        return streamid
    fields = {}
    for item in streamid[4:].split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise BadStreamId("malformed streamid")
        fields[name.strip()] = value.strip()
    if fields.get("m", "publish") != "publish":
        raise BadStreamId("not a publish (streamid mode)")
    return fields.get("r", "")


def relay_command(settings: Settings, key: str) -> list[str]:
    """The relay: the caller's MPEG-TS in, the same packets (no re-encode) out as an RTMP publish."""
    target = f"{settings.rtmp_internal_url.rstrip('/')}/{settings.ingest_app}/{key}"
    return [settings.ffmpeg_binary, "-hide_banner", "-nostdin", "-loglevel", "error",
            "-fflags", "+genpts", "-f", "mpegts", "-i", "pipe:0",
            "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy",
            "-f", "flv", "-flvflags", "no_duration_filesize", target]


@dataclass
class Relay:
    conn: libsrt.Socket
    proc: subprocess.Popen
    client: str | None
    bytes_in: int = 0
    threads: list[threading.Thread] = field(default_factory=list)


class SrtIngest:
    """The listener (one accept thread) and one pump thread per publish. libsrt's calls block
    without the GIL; the listen callback runs on libsrt's receive thread and waits for the
    authorization the event loop does, at most authorize_timeout_seconds."""

    def __init__(self, settings: Settings, authorize: Authorizer):
        self.settings = settings
        self.authorize = authorize
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listener: libsrt.Socket | None = None
        self.port: int | None = None
        self.relays: dict[int, Relay] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._accepting: threading.Thread | None = None
        # ctypes must keep the callback object alive as long as libsrt may call it
        self._callback = libsrt.LISTEN_CALLBACK(self._on_handshake)

    @property
    def enabled(self) -> bool:
        return self.settings.srt_port is not None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        listener = libsrt.Socket()
        listener.set_int(libsrt.SRTO_LATENCY, self.settings.srt_latency_ms)
        listener.bind(self.settings.srt_host, self.settings.srt_port or 0)
        listener.listen(self._callback)
        self.listener = listener
        self.port = listener.port()
        self._accepting = threading.Thread(target=self._accept_loop, name="srt-accept", daemon=True)
        self._accepting.start()
        log.info("srt listener started", extra={"port": self.port})

    # ---- handshake (libsrt's thread) ------------------------------------------------------------
    def _on_handshake(self, _opaque, handle: int, _hsversion: int, peeraddr, streamid: bytes | None) -> int:
        # an exception escaping a ctypes callback would let the caller in: everything is caught
        client = None
        try:
            client = libsrt.peer_host(peeraddr)
            key = key_from_streamid((streamid or b"").decode("utf-8", errors="replace"))
            check_key_shape(key)
            if self._stopping.is_set() or self.loop is None:
                raise Refused("listener stopping")
            future = asyncio.run_coroutine_threadsafe(self.authorize(key, client), self.loop)
            future.result(timeout=self.settings.authorize_timeout_seconds + 1)
            return 0
        except Refused as exc:
            reason = libsrt.SRT_REJX_BAD_MODE if "mode" in exc.reason else libsrt.SRT_REJX_FORBIDDEN
            log.info("srt publish refused", extra={"reason": exc.reason, "clientAddr": client})
        except (concurrent.futures.TimeoutError, TimeoutError):
            reason = libsrt.SRT_REJX_OVERLOAD
            log.warning("srt publish refused", extra={"reason": "authorization timed out", "clientAddr": client})
        except BaseException as exc:  # noqa: BLE001  see above
            reason = libsrt.SRT_REJX_FORBIDDEN
            log.warning("srt handshake failed", extra={"error": type(exc).__name__, "clientAddr": client})
        try:
            libsrt.reject(handle, reason)
        except BaseException:  # noqa: BLE001, S110  the -1 below rejects anyway, with a generic reason
            pass
        return -1

    # ---- accepted publishes -------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self.listener is not None
        while not self._stopping.is_set():
            try:
                conn = self.listener.accept()
            except libsrt.SrtError as exc:
                if not self._stopping.is_set():
                    log.warning("srt accept failed", extra={"error": str(exc)})
                    if self.listener.state() != libsrt.SRTS_LISTENING:
                        return
                continue
            try:
                self._start_relay(conn)
            except Exception as exc:  # noqa: BLE001  one bad publish must not stop the listener
                log.warning("srt relay failed to start", extra={"error": type(exc).__name__})
                conn.close()

    def _start_relay(self, conn: libsrt.Socket) -> None:
        key = key_from_streamid(conn.get_bytes(libsrt.SRTO_STREAMID).rstrip(b"\0").decode())
        check_key_shape(key)  # the callback let it in; this is the same string
        proc = subprocess.Popen(relay_command(self.settings, key), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        relay = Relay(conn, proc, None)
        with self._lock:
            self.relays[conn.handle] = relay
        for target, name in ((self._pump, "srt-pump"), (self._errors, "srt-relay-log")):
            t = threading.Thread(target=target, args=(relay, key), name=name, daemon=True)
            relay.threads.append(t)
            t.start()
        log.info("srt publish accepted", extra={"relayPid": proc.pid})

    def _pump(self, relay: Relay, _key: str) -> None:
        buf = ctypes.create_string_buffer(libsrt.MAX_MESSAGE * 2)
        stdin = relay.proc.stdin
        assert stdin is not None
        try:
            while True:
                n = relay.conn.recv(buf)
                if n <= 0:
                    break
                relay.bytes_in += n
                stdin.write(buf.raw[:n])
        except (BrokenPipeError, ValueError, OSError):
            pass  # the relay ended (refused, or the publish was dropped): so does the connection
        finally:
            relay.conn.close()
            try:
                stdin.close()
            except OSError:
                pass
            try:
                relay.proc.wait(timeout=self.settings.transcoder_end_grace_seconds + 3)
            except subprocess.TimeoutExpired:
                relay.proc.kill()
                relay.proc.wait()
            with self._lock:
                self.relays.pop(relay.conn.handle, None)
            log.info("srt publish ended", extra={"bytesIn": relay.bytes_in, "relayExit": relay.proc.returncode})

    def _errors(self, relay: Relay, key: str) -> None:
        # ffmpeg names its output URL in errors; the key in it never reaches a log line
        assert relay.proc.stderr is not None
        for raw in relay.proc.stderr:
            line = raw.decode(errors="replace").strip().replace(key, "<key>")
            if line:
                log.info("srt relay says", extra={"line": line[:300]})

    def close(self) -> None:
        self._stopping.set()
        if self.listener is not None:
            self.listener.close()  # wakes srt_accept
        with self._lock:
            relays = list(self.relays.values())
        for relay in relays:
            relay.conn.close()  # wakes the pump, which ends the relay
        for relay in relays:
            for t in relay.threads:
                t.join(timeout=self.settings.transcoder_end_grace_seconds + 5)
        if self._accepting is not None:
            self._accepting.join(timeout=5)
