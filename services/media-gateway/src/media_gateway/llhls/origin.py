"""The LL-HLS origin: every live session's renditions in memory, and the answers to players.

The transcoder (`media_gateway.llhls.transcoder`) hands each rendition's bytes to `feed`; the
FragmentReader cuts them into the init section and parts, the MediaPlaylist announces them. Requests
(`media_gateway.llhls.views`) read from here and wait here: a blocking playlist reload or a part
that does not exist yet waits on the rendition's condition, which every new part and the end of the
stream notify.

DVR (docs/ll-hls.md, "DVR"): a playlist lists the last `dvr_seconds` of media, but only the newest
`window` segments stay in memory as parts; an older complete segment is written once to this node's
spool folder (`<dvr_dir>/<session>/<rendition>/seg-<msn>.m4s`), served from there, and deleted when
it leaves the playlist or the session is forgotten. Memory per rendition is therefore `window`
segments whatever the DVR window, disk is the DVR window. The gateway in front caches what is
immutable (init sections, parts, segments) and what a blocking reload answered, so a part is fetched from here about once per gateway, however many viewers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import Counter

from media_gateway.ingest.nginx_conf import Rendition
from media_gateway.ingest.service import SOURCE_SUFFIX
from media_gateway.llhls.fmp4 import Fragment, FragmentReader, Init
from media_gateway.llhls.playlist import MediaPlaylist, Reload

log = logging.getLogger("media_gateway.llhls")

FETCHES = Counter("llhls_origin_fetches", "Requests the LL-HLS origin answered, by kind of resource",
                  ["kind"])
# how many fetches of one URI are remembered per session (for the X-Origin-Fetch header)
FETCH_MEMORY = 4096

_PART = re.compile(r"part-(\d{1,9})\.(\d{1,4})\.m4s")
_SEGMENT = re.compile(r"seg-(\d{1,9})\.m4s")
_INIT = re.compile(r"init-(\d{1,4})\.mp4")


class Gone(Exception):
    """The session or rendition is not (or no longer) here."""


@dataclass
class RenditionMedia:
    rendition: Rendition
    playlist: MediaPlaylist
    inits: dict[int, bytes] = field(default_factory=dict)  # generation -> ftyp+moov
    parts: dict[tuple[int, int], bytes] = field(default_factory=dict)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    generation: int = -1
    reader: FragmentReader | None = None
    clock: tuple[datetime, float] | None = None  # (wall clock of the generation's first frame, media seconds so far)
    lag: float = 0.0  # seconds the transcoder's output is behind the wall clock since its first part
    spool: Path | None = None  # where segments older than the in-memory window go (None: kept in memory)
    spilled: int = 0  # segments below this msn are on disk (or trimmed), not in `parts`
    first_msn: int = 0  # the playlist's first segment when files were last deleted

    def segment_bytes(self, msn: int) -> bytes | None:
        """A complete segment still in memory (the newest `window`); None otherwise."""
        segment = self.playlist.segment(msn)
        if segment is None or not segment.complete or (msn, 0) not in self.parts:
            return None
        return b"".join(self.parts[(msn, p.index)] for p in segment.parts)

    def spool_file(self, msn: int) -> Path | None:
        return self.spool / f"seg-{msn}.m4s" if self.spool is not None else None

    async def read_segment(self, msn: int) -> bytes | None:
        """A complete segment from memory or, older, from the spool folder."""
        if (data := self.segment_bytes(msn)) is not None:
            return data
        segment = self.playlist.segment(msn)
        path = self.spool_file(msn)
        if segment is None or not segment.complete or path is None or msn >= self.spilled:
            return None
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None  # trimmed off the window meanwhile


@dataclass
class SessionMedia:
    session_id: str
    renditions: dict[str, RenditionMedia]  # stream name (<session>_src[_<name>]) -> media
    ended_at: float | None = None
    fetches: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def count(self, uri: str) -> int:
        n = self.fetches.pop(uri, 0) + 1
        self.fetches[uri] = n
        while len(self.fetches) > FETCH_MEMORY:
            self.fetches.popitem(last=False)
        return n


def stream_name(session_id: str, rendition: Rendition) -> str:
    return session_id + rendition.suffix


class Origin:
    def __init__(self, ladder: list[Rendition], *, base: str = "/hls/ingest-0", part_seconds: float = 1 / 3,
                 segment_seconds: float = 1.0, window: int = 6, linger_seconds: float = 60.0,
                 dvr_seconds: float = 0.0, dvr_dir: Path | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.ladder = ladder
        # the public path of this node's playlists (/hls/<node>), which the master playlist names
        self.base = base.rstrip("/")
        self.part_seconds, self.segment_seconds, self.window = part_seconds, segment_seconds, window
        self.linger_seconds = linger_seconds
        self.dvr_seconds, self.dvr_dir = dvr_seconds, dvr_dir
        self.sessions: dict[str, SessionMedia] = {}
        self._clock = clock
        self._swept = False

    # ---- the transcoder's side ----------------------------------------------------------------
    def open(self, session_id: str) -> SessionMedia:
        """A session goes live (again, after a restart of this service: it starts over)."""
        self._forget_old()
        if self.dvr_dir is not None and not self._swept:
            # a previous process's sessions cannot be served any more (their parts were in memory)
            self._swept = True
            shutil.rmtree(self.dvr_dir, ignore_errors=True)
        media = SessionMedia(session_id, {
            # PART-TARGET may not change during the stream and bounds every part: ffmpeg cuts parts
            # on whole milliseconds of RTMP time (0.333 or 0.334 s for a third), so a hair above
            stream_name(session_id, r): RenditionMedia(r, MediaPlaylist(
                part_target=round(self.part_seconds * 1.02, 3), segment_target=self.segment_seconds,
                window=self.window, init_uri="init-0.mp4", dvr_seconds=self.dvr_seconds),
                spool=self._spool(session_id) / stream_name(session_id, r) if self.dvr_dir else None)
            for r in self.ladder})
        if self.dvr_dir is not None:
            shutil.rmtree(self._spool(session_id), ignore_errors=True)
        self.sessions[session_id] = media
        return media

    def _spool(self, session_id: str) -> Path:
        assert self.dvr_dir is not None
        return self.dvr_dir / session_id

    def holds(self, session_id: str) -> bool:
        media = self.sessions.get(session_id)
        return media is not None and media.ended_at is None

    def restart(self, session_id: str, names: list[str] | None = None) -> None:
        """A transcoder (re)starts: the next output of each of its renditions (all by default)
        begins with a new init section."""
        media = self.sessions.get(session_id)
        if media is None:
            return
        for name, r in media.renditions.items():
            if names is not None and name not in names:
                continue
            r.generation += 1
            r.reader = FragmentReader()
            r.clock, r.lag = None, 0.0  # a new output is on time until its parts say otherwise
            if r.generation > 0:
                r.playlist.restart(f"init-{r.generation}.mp4")

    async def feed(self, session_id: str, name: str, chunk: bytes) -> None:
        media = self.sessions.get(session_id)
        r = media.renditions.get(name) if media else None
        if r is None or r.reader is None or r.playlist.ended:
            return
        announced = False
        for item in r.reader.feed(chunk):
            if isinstance(item, Init):
                r.inits[r.generation] = item.data
            elif isinstance(item, Fragment) and item.duration > 0:
                announced |= self._add_part(r, item)
        if announced:
            async with r.changed:
                r.changed.notify_all()
            await self._spill(r)

    async def _spill(self, r: RenditionMedia) -> None:
        """Segments older than the in-memory window go to the spool folder (or, without one, stay
        in memory until the playlist drops them); files of segments off the playlist are deleted."""
        segments = r.playlist.segments
        first, last = segments[0].msn, segments[-1].msn
        if r.spool is None:
            for key in [k for k in r.parts if k[0] < first]:
                del r.parts[key]
            return
        # the newest `window` segments (the open one included) keep their parts in memory
        r.spilled = max(r.spilled, first)
        while r.spilled <= last - self.window:
            msn = r.spilled
            data = r.segment_bytes(msn)
            if data is not None:
                path = r.spool_file(msn)
                await asyncio.to_thread(_write, path, data)
            # the file exists before the parts go, so a request always finds one or the other
            r.spilled = msn + 1
            for key in [k for k in r.parts if k[0] == msn]:
                del r.parts[key]
        if first > r.first_msn:
            gone = [r.spool_file(msn) for msn in range(r.first_msn, first)]
            r.first_msn = first
            await asyncio.to_thread(_unlink, gone)

    def _add_part(self, r: RenditionMedia, fragment: Fragment) -> bool:
        now = datetime.now(UTC)
        if r.clock is None:
            # the part is complete now, so its first frame entered the transcoder about its duration ago
            r.clock = (now - timedelta(seconds=fragment.duration), 0.0)
        start, offset = r.clock
        try:
            msn, index = r.playlist.add_part(fragment.duration, fragment.independent,
                                             start + timedelta(seconds=offset))
        except ValueError:
            return False  # output that does not start on a key frame: nothing can play it
        r.clock = (start, offset + fragment.duration)
        r.lag = (now - start).total_seconds() - (offset + fragment.duration)
        r.parts[(msn, index)] = fragment.data
        return True

    def lag(self, session_id: str, name: str) -> float:
        media = self.sessions.get(session_id)
        r = media.renditions.get(name) if media else None
        return r.lag if r is not None else 0.0

    async def end(self, session_id: str) -> None:
        """The stream ended: every playlist gets EXT-X-ENDLIST, waiting requests are answered."""
        media = self.sessions.get(session_id)
        if media is None or media.ended_at is not None:
            return
        media.ended_at = self._clock()
        for r in media.renditions.values():
            r.playlist.end()
            async with r.changed:
                r.changed.notify_all()
        log.info("llhls session ended", extra={"sessionId": session_id})

    def _forget_old(self) -> None:
        now = self._clock()
        for session_id in [s for s, m in self.sessions.items()
                           if m.ended_at is not None and now - m.ended_at > self.linger_seconds]:
            del self.sessions[session_id]
            self._remove_spool(session_id)

    def _remove_spool(self, session_id: str) -> None:
        if self.dvr_dir is None:
            return
        try:
            # thousands of files for a long window: not on the event loop
            asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, self._spool(session_id), True)
        except RuntimeError:
            shutil.rmtree(self._spool(session_id), ignore_errors=True)

    # ---- the players' side --------------------------------------------------------------------
    def session(self, session_id: str) -> SessionMedia:
        self._forget_old()
        media = self.sessions.get(session_id)
        if media is None:
            raise Gone(session_id)
        return media

    def rendition(self, name: str) -> tuple[SessionMedia, RenditionMedia]:
        session_id = name.split(SOURCE_SUFFIX, 1)[0] if SOURCE_SUFFIX in name else name
        media = self.session(session_id)
        r = media.renditions.get(name)
        if r is None:
            raise Gone(name)
        return media, r

    def master(self, session_id: str) -> str:
        """The multivariant playlist: the source first, then the ladder from the top."""
        media = self.session(session_id)
        lines = ["#EXTM3U", "#EXT-X-VERSION:9", "#EXT-X-INDEPENDENT-SEGMENTS"]
        for name, r in media.renditions.items():
            attributes = f"BANDWIDTH={r.rendition.bandwidth}"
            if r.rendition.height is not None:
                width = round(r.rendition.height * 16 / 9 / 2) * 2
                attributes += f",RESOLUTION={width}x{r.rendition.height}"
            lines += [f"#EXT-X-STREAM-INF:{attributes}", f"{self.base}/{name}/index.m3u8"]
        return "\n".join(lines) + "\n"

    async def wait_playlist(self, r: RenditionMedia, msn: int | None, part: int | None, timeout: float) -> bool:
        """Hold a playlist request until it can be answered: a blocking reload until its part or
        segment is listed, a plain one until the rendition has its first part. False on timeout.
        Raises ValueError for a request too far ahead (400)."""
        def ready() -> bool:
            if msn is None:
                return bool(r.playlist.segments) or r.playlist.ended
            answer = r.playlist.wants(msn, part)
            if answer is Reload.TOO_FAR:
                raise ValueError("too far ahead")
            return answer is Reload.READY

        return await self._wait(r, ready, timeout)

    async def wait_resource(self, r: RenditionMedia, filename: str, timeout: float) -> bytes | None:
        """The bytes of an init section, part or segment; a part or segment announced next (or the
        open segment) is waited for, as a preload hint's request is. None: not (or no longer) here."""
        if m := _INIT.fullmatch(filename):
            return r.inits.get(int(m[1]))
        if m := _PART.fullmatch(filename):
            msn, index = int(m[1]), int(m[2])

            def part_ready() -> bool:
                if (msn, index) in r.parts:
                    return True
                last = r.playlist.segments[-1].msn if r.playlist.segments else -1
                # only the next part of the open segment or the first of the next one is worth holding
                return r.playlist.ended or not (msn == last or (msn == last + 1 and index == 0)) \
                    or r.playlist.wants(msn, index) is not Reload.WAIT

            await self._wait(r, part_ready, timeout)
            return r.parts.get((msn, index))
        if m := _SEGMENT.fullmatch(filename):
            msn = int(m[1])

            def segment_ready() -> bool:
                last = r.playlist.segments[-1].msn if r.playlist.segments else -1
                return r.playlist.ended or msn != last or r.segment_bytes(msn) is not None

            await self._wait(r, segment_ready, timeout)
            return await r.read_segment(msn)
        return None

    @staticmethod
    async def _wait(r: RenditionMedia, ready: Callable[[], bool], timeout: float) -> bool:
        async with r.changed:
            try:
                await asyncio.wait_for(r.changed.wait_for(ready), timeout)
            except TimeoutError:
                return False
        return True

    def stop_all(self) -> list[str]:
        ids = list(self.sessions)
        self.sessions.clear()
        for session_id in ids:
            self._remove_spool(session_id)
        return ids


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _unlink(paths: list[Path | None]) -> None:
    for path in paths:
        if path is not None:
            path.unlink(missing_ok=True)
