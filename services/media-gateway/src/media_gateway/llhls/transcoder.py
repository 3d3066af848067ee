"""Two ffmpeg per live session: each plays the session's source from the ingest; one copies the
source, the other transcodes every lower rendition of the ladder (decoding once); each rendition is
written as fragmented MP4 to a pipe of its own. Two, not one: ffmpeg runs its outputs in one loop,
so a copied source sharing it with x264 arrives as late as the slowest encode on a busy machine.

It plays `rtmp://<ingest>/src/<session>_src`, the live stream itself, so a transcoded rendition is
as late as its encoder and no later (the transcoder nginx-rtmp used to start followed the recording
file and fell behind on a busy machine, never to catch up). It is started while on_publish is
answered and joins src before the encoder is let in (see `Transcoders.start`): src starts every
player on a key frame, and one that joined after the encoder's first would wait for the next.

Fragments: `frag_keyframe` cuts one at every key frame (so segments can start there) and
`frag_duration` (a hair under the part target, since timestamps come in whole milliseconds from
RTMP) cuts the ones in between; `empty_moov` + `default_base_moof` is the CMAF shape players take
(init section, then self-contained `moof`+`mdat` pairs). `-flush_packets 1` hands each fragment to
the pipe as it is finished instead of when ffmpeg's 32 KiB buffer fills.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import xml.etree.ElementTree as ET
from collections import deque

import httpx

from media_gateway.config import Settings
from media_gateway.ingest.nginx_conf import Rendition
from media_gateway.ingest.service import source_stream_name
from media_gateway.ingest.source_pull import SOURCE_APP
from media_gateway.ingest.stats import app_streams
from media_gateway.llhls.origin import Origin, stream_name

log = logging.getLogger("media_gateway.llhls.transcoder")

READ_CHUNK = 256 * 1024
STAT_POLL_SECONDS = 0.01
MOVFLAGS = "empty_moov+default_base_moof+frag_keyframe+negative_cts_offsets"


def ffmpeg_argv(ffmpeg: str, source_url: str, outputs: list[tuple[Rendition, int]], *, fps: int = 30,
                gop_seconds: int = 1, part_seconds: float = 1 / 3, x264_preset: str = "superfast") -> list[str]:
    """`outputs`: (rendition, the file descriptor ffmpeg writes it to)."""
    gop = fps * gop_seconds
    fragment = ["-f", "mp4", "-movflags", MOVFLAGS, "-frag_duration", str(int(part_seconds * 1e6) - 3000),
                "-flush_packets", "1"]
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            # no `-fflags nobuffer`: it discards what the probe read, i.e. the first key frame
            "-analyzeduration", "500000", "-probesize", "500000", "-rtmp_live", "live",
            # nginx-rtmp's replies are small writes and so are ffmpeg's; with Nagle on both ends each
            # round trip of the play handshake waited ~40 ms for a delayed ACK. The encoder is held
            # until this play is in (on_publish), so those waits were go-live time: 0.29 -> 0.15 s
            "-tcp_nodelay", "1",
            "-i", source_url]
    for rendition, fd in outputs:
        argv += ["-map", "0:v:0", "-map", "0:a:0?"]
        if rendition.height is None:
            argv += ["-c", "copy"]
        else:
            argv += ["-c:v", "libx264", "-preset", x264_preset, "-tune", "zerolatency", "-profile:v", "main",
                     "-pix_fmt", "yuv420p", "-vf", f"scale=-2:{rendition.height}", "-fpsmax", str(fps),
                     "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
                     "-force_key_frames", f"expr:gte(t,n_forced*{gop_seconds})",
                     "-b:v", f"{rendition.video_kbps}k", "-maxrate", f"{rendition.video_kbps}k",
                     "-bufsize", f"{2 * rendition.video_kbps}k",
                     "-c:a", "aac", "-b:a", f"{rendition.audio_kbps}k", "-ar", "44100"]
        argv += [*fragment, f"pipe:{fd}"]
    return argv


class Transcoder:
    """One ffmpeg of a session (its `renditions`), restarted while the session lasts; its output
    goes to the origin."""

    def __init__(self, settings: Settings, origin: Origin, session_id: str, renditions: list[Rendition]):
        self.settings = settings
        self.origin = origin
        self.session_id = session_id
        self.renditions = renditions
        self.process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._produced = False  # the running ffmpeg has written something (else there is nothing to finish)
        self._lagging = False
        self._task: asyncio.Task | None = None
        self.started = asyncio.Event()  # the first ffmpeg is running

    def source_url(self) -> str:
        host, port = self.settings.ingest_rtmp_address
        return f"rtmp://{host}:{port}/{SOURCE_APP}/{source_stream_name(self.session_id)}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"transcoder {self.session_id}")

    async def _run(self) -> None:
        restarts = 0
        while not self._stopping:
            began = time.monotonic()
            try:
                code = await self._once()
            except Exception as exc:  # noqa: BLE001  a failed start is retried like a crash
                log.warning("transcoder failed", extra={"sessionId": self.session_id, "error": repr(exc)})
                code = None
            finally:
                self.started.set()
            if self._stopping:
                break
            if self._lagging:  # stopped for being late: back to the live edge at once
                self._lagging = False
                continue
            # the source ended (the publisher left) or ffmpeg died: try again while the session is
            # open, a little later each time it dies young
            restarts = restarts + 1 if time.monotonic() - began < 10 else 0
            log.info("transcoder exited; restarting", extra={"sessionId": self.session_id, "exitCode": code})
            await asyncio.sleep(min(5.0, self.settings.transcoder_restart_seconds * (1 + restarts)))

    async def _once(self) -> int:
        pipes = [(rendition, *os.pipe()) for rendition in self.renditions]
        argv = ffmpeg_argv(self.settings.ffmpeg_binary, self.source_url(),
                           [(rendition, w) for rendition, _r, w in pipes], fps=self.settings.transcoder_fps,
                           part_seconds=self.settings.llhls_part_seconds,
                           x264_preset=self.settings.transcoder_x264_preset)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *argv, pass_fds=[w for _rendition, _r, w in pipes], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        except BaseException:
            for _rendition, r, _w in pipes:
                os.close(r)
            raise
        finally:
            for _rendition, _r, w in pipes:
                os.close(w)
        self._produced = False
        self.origin.restart(self.session_id, [stream_name(self.session_id, r) for r in self.renditions])
        self.started.set()
        readers = [asyncio.create_task(self._pump(r, stream_name(self.session_id, rendition)))
                   for rendition, r, _w in pipes]
        errors = asyncio.create_task(_tail(self.process.stderr))
        code = await self.process.wait()
        await asyncio.gather(*readers, return_exceptions=True)
        tail = await errors
        if code != 0 and not self._stopping:
            log.warning("transcoder exited", extra={"sessionId": self.session_id, "exitCode": code,
                                                    "stderr": " | ".join(tail)})
        return code

    async def _pump(self, fd: int, name: str) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_CHUNK)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(fd, "rb", buffering=0))
        try:
            while chunk := await reader.read(READ_CHUNK):
                self._produced = True
                await self.origin.feed(self.session_id, name, chunk)
                self._check_lag(name)
        finally:
            transport.close()

    def _check_lag(self, name: str) -> None:
        """An encoder slower than real time (a starved machine) reads the source from nginx-rtmp's
        queue ever later and never catches up; past `transcoder_max_lag_seconds` it is restarted,
        which joins the source at its next key frame (players see a discontinuity, then live again)."""
        lag = self.origin.lag(self.session_id, name)
        process = self.process
        if lag > self.settings.transcoder_max_lag_seconds and not self._lagging and process is not None \
                and process.returncode is None:
            log.warning("transcoder behind the live source; restarting it",
                        extra={"sessionId": self.session_id, "rendition": name, "lagSeconds": round(lag, 2)})
            self._lagging = True
            process.kill()

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            # the source's publisher was dropped just before: ffmpeg reads the end of the stream and
            # writes the fragment it holds, which players get before ENDLIST. SIGTERM does the same
            # when it does not come; SIGKILL when even that hangs.
            grace = self.settings.transcoder_end_grace_seconds if self._produced else 0
            for signal_it, wait in ((None, grace), (process.terminate, 3),
                                    (process.kill, 3)):
                if signal_it is not None:
                    signal_it()
                try:
                    await asyncio.wait_for(asyncio.shield(process.wait()), wait)
                    break
                except TimeoutError:
                    continue
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()


async def _tail(stream: asyncio.StreamReader, keep: int = 3) -> list[str]:
    """The last lines ffmpeg wrote to stderr (for the log), read as they come so the pipe never fills."""
    lines: deque[str] = deque(maxlen=keep)
    while line := await stream.readline():
        lines.append(line.decode(errors="replace").strip()[:300])
    return list(lines)


class Transcoders:
    """The transcoders of the sessions this process holds, and the origin they feed."""

    def __init__(self, settings: Settings, origin: Origin, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.origin = origin
        self._running: dict[str, list[Transcoder]] = {}
        self._http = httpx.AsyncClient(timeout=1.0, transport=transport) \
            if settings.live_transcode and settings.ingest_stat else None

    @property
    def enabled(self) -> bool:
        return self.settings.live_transcode

    def holds(self, session_id: str) -> bool:
        return session_id in self._running

    def held(self) -> list[str]:
        return list(self._running)

    async def start(self, session_id: str, *, join: bool = True) -> bool:
        """Start the session's transcoder; with `join`, wait (bounded) until it plays src, so it
        gets the encoder's first key frame. Never raises."""
        if not self.enabled or session_id in self._running:
            return False
        started = time.monotonic()
        self.origin.open(session_id)
        groups = [[r for r in self.origin.ladder if r.height is None], [r for r in self.origin.ladder if r.height]]
        transcoders = [Transcoder(self.settings, self.origin, session_id, group) for group in groups if group]
        self._running[session_id] = transcoders
        for transcoder in transcoders:
            transcoder.start()
        if join:
            deadline = started + self.settings.transcoder_join_timeout_seconds
            try:
                for transcoder in transcoders:
                    await asyncio.wait_for(transcoder.started.wait(), max(0.0, deadline - time.monotonic()))
                await self._wait_until_playing(session_id, len(transcoders), deadline)
            except (TimeoutError, httpx.HTTPError, ET.ParseError) as exc:
                log.warning("transcoder not confirmed playing src; going on", extra={"sessionId": session_id,
                                                                                   "error": repr(exc)})
        log.info("transcoder started", extra={"sessionId": session_id,
                                              "ms": round((time.monotonic() - started) * 1000, 1)})
        return True

    async def _wait_until_playing(self, session_id: str, count: int, deadline: float) -> None:
        """Poll rtmp_stat until src lists `count` ffmpeg among the players of the session's stream."""
        if self._http is None or self.settings.ingest_stat is None:
            return
        name = source_stream_name(session_id)
        while True:
            r = await self._http.get(self.settings.ingest_stat)
            r.raise_for_status()
            if transcoders_playing(r.content, name) >= count:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the transcoder of {session_id} did not reach src")
            await asyncio.sleep(STAT_POLL_SECONDS)

    async def stop(self, session_id: str) -> None:
        """The session ended: stop its ffmpeg and end its playlists (idempotent)."""
        transcoders = self._running.pop(session_id, [])
        await asyncio.gather(*(t.stop() for t in transcoders), return_exceptions=True)
        await self.origin.end(session_id)

    async def close(self) -> None:
        running, self._running = [t for ts in self._running.values() for t in ts], {}
        await asyncio.gather(*(t.stop() for t in running), return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def transcoders_playing(stat_xml: bytes, stream: str) -> int:
    """How many of ffmpeg's RTMP clients (flashver `LNX 9,0,124,2`) play src's `stream`."""
    for element in app_streams(stat_xml, SOURCE_APP):
        if element.findtext("name") == stream:
            return sum(1 for client in element.iter("client")
                       if client.findtext("flashver", "").startswith("LNX") and client.find("publishing") is None)
    return 0
