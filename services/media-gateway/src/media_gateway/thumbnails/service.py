"""Live thumbnails: a worker grabs a frame of every live local session from its newest complete HLS
segment, stores the JPEG in the object store and publishes `media.thumbnail.updated`.

The first grab is attempted a few seconds after the publish (as soon as a segment exists), then
every `thumbnail_interval_seconds`. Sessions are claimed with SKIP LOCKED, so replicas share the work.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from contracts.events.media import ThumbnailUpdated
from contracts.subjects import MEDIA_THUMBNAIL_UPDATED
from servicekit.app import ServiceRuntime
from servicekit.outbox import stage_event

from media_gateway import media
from media_gateway.config import Settings
from media_gateway.ingest.models import IngestSession
from media_gateway.ingest.service import SOURCE, source_stream_name

log = logging.getLogger("media_gateway.thumbnails")

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_BANDWIDTH = re.compile(r"BANDWIDTH=(\d+)")


def _variant_names(master: Path, session_id: str) -> list[str]:
    """Rendition folder names listed in a master playlist, lowest bandwidth first."""
    try:
        lines = master.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found: list[tuple[int, str]] = []
    for info, uri in itertools.pairwise(lines):
        if not info.startswith("#EXT-X-STREAM-INF"):
            continue
        parts = uri.strip().split("/")
        name = parts[-2] if len(parts) >= 2 else ""
        if _NAME.fullmatch(name) and name.startswith(session_id):
            bandwidth = _BANDWIDTH.search(info)
            found.append((int(bandwidth.group(1)) if bandwidth else 0, name))
    return [name for _, name in sorted(found)]


def latest_segment(hls_dir: Path, session_id: str) -> Path | None:
    """The newest segment a playlist of this session lists (so it is complete), smallest rendition first."""
    names = _variant_names(hls_dir / f"{session_id}.m3u8", session_id) or [source_stream_name(session_id)]
    for name in names:
        try:
            lines = (hls_dir / name / "index.m3u8").read_text(errors="replace").splitlines()
        except OSError:
            continue
        segments = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not segments:
            continue
        filename = segments[-1].rsplit("/", 1)[-1]
        candidate = hls_dir / name / filename
        if re.fullmatch(r"[0-9]+\.ts", filename) and candidate.is_file():
            return candidate
    return None


class ThumbnailWorker:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, runtime: ServiceRuntime) -> None:
        while not self._stop.is_set():
            try:
                await self.tick(runtime)
            except Exception as exc:  # noqa: BLE001  the worker outlives any one failure
                log.warning("thumbnail pass failed", extra={"error": repr(exc)})
            try:
                await asyncio.wait_for(self._stop.wait(), self.settings.thumbnail_poll_seconds)
            except TimeoutError:
                pass

    async def tick(self, runtime: ServiceRuntime) -> int:
        """Refresh the thumbnails that are due; returns how many were published."""
        s = self.settings
        async with runtime.db.session() as session:
            due = (await session.exec(text(
                "UPDATE ingest_sessions SET next_thumbnail_at = now() + make_interval(secs => :interval) "
                "WHERE id IN (SELECT id FROM ingest_sessions WHERE ended_at IS NULL AND revoked_at IS NULL "
                "  AND next_thumbnail_at <= now() ORDER BY next_thumbnail_at LIMIT 10 FOR UPDATE SKIP LOCKED) "
                "RETURNING id, channel_id"
            ).bindparams(interval=s.thumbnail_interval_seconds))).all()
            await session.commit()
        published = 0
        for session_id, channel_id in due:
            published += await self._refresh(runtime, session_id, channel_id)
        return published

    async def _refresh(self, runtime: ServiceRuntime, session_id: str, channel_id: str) -> int:
        s = self.settings
        segment = latest_segment(s.hls_dir, session_id)
        image = None
        if segment is not None:
            try:
                image = await media.grab_frame(s.ffmpeg_binary, segment, s.thumbnail_height)
            except Exception as exc:  # noqa: BLE001  retried on the next pass
                log.warning("thumbnail grab failed", extra={"sessionId": session_id, "error": str(exc)[:300]})
        if image is None or runtime.store is None:
            async with runtime.db.session() as session:
                row = await session.get(IngestSession, session_id, with_for_update=True)
                if row is not None and row.ended_at is None:
                    row.next_thumbnail_at = datetime.now(UTC) + timedelta(seconds=s.thumbnail_retry_seconds)
                    session.add(row)
                    await session.commit()
            return 0
        key = f"thumbnails/{channel_id}/{session_id}-{int(time.time() * 1000)}.jpg"
        url = await runtime.store.put(key, image, "image/jpeg")
        previous = None
        async with runtime.db.session() as session:
            row = await session.get(IngestSession, session_id, with_for_update=True)
            if row is None:
                return 0
            previous, row.thumbnail_key = row.thumbnail_key, key
            session.add(row)
            await stage_event(session, MEDIA_THUMBNAIL_UPDATED, ThumbnailUpdated(channel_id=channel_id, url=url),
                              source=SOURCE, key=channel_id)
            await session.commit()
        if previous:
            try:
                await runtime.store.delete(previous)
            except Exception as exc:  # noqa: BLE001  an orphaned old thumbnail costs a few KiB
                log.info("old thumbnail not deleted", extra={"key": previous, "error": str(exc)})
        log.info("thumbnail updated", extra={"sessionId": session_id, "channelId": channel_id})
        return 1
