"""Live thumbnails: a worker grabs a frame of every live local session from its newest complete HLS
segment (in the LL-HLS origin's memory), stores the JPEG in the object store and publishes
`media.thumbnail.updated`.

The first grab is attempted a few seconds after the publish (as soon as a segment exists), then
every `thumbnail_interval_seconds`. A replica claims (SKIP LOCKED) only the sessions whose media it
holds: the one that transcodes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from contracts.events.media import ThumbnailUpdated
from contracts.subjects import MEDIA_THUMBNAIL_UPDATED
from servicekit.app import ServiceRuntime
from servicekit.outbox import stage_event
from servicekit.periodic import every

from media_gateway import media
from media_gateway.config import Settings
from media_gateway.ingest.models import IngestSession
from media_gateway.ingest.service import SOURCE
from media_gateway.llhls.origin import Origin

log = logging.getLogger("media_gateway.thumbnails")

def latest_segment(origin: Origin, session_id: str) -> bytes | None:
    """The newest complete segment of the session's smallest rendition, with its init section in
    front (a file ffmpeg can open), from the LL-HLS origin's memory; None before the first one."""
    media = origin.sessions.get(session_id)
    if media is None:
        return None
    for r in sorted(media.renditions.values(), key=lambda r: r.rendition.bandwidth):
        for segment in reversed(r.playlist.segments):
            data = r.segment_bytes(segment.msn)
            init = r.inits.get(int(segment.init_uri.split("-")[1].split(".")[0]))
            if data is not None and init is not None:
                return init + data
    return None


class ThumbnailWorker:
    def __init__(self, settings: Settings, origin: Origin):
        self.settings = settings
        self.origin = origin
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, runtime: ServiceRuntime) -> None:
        # with a logger: the worker outlives any one failure
        await every(self.settings.thumbnail_poll_seconds, lambda: self.tick(runtime), self._stop,
                    log=log, failed="thumbnail pass failed")

    async def tick(self, runtime: ServiceRuntime) -> int:
        """Refresh the thumbnails that are due; returns how many were published."""
        s = self.settings
        held = [session_id for session_id in self.origin.sessions if self.origin.holds(session_id)]
        if not held:
            return 0
        async with runtime.db.session() as session:
            due = (await session.exec(text(
                "UPDATE ingest_sessions SET next_thumbnail_at = now() + make_interval(secs => :interval) "
                "WHERE id IN (SELECT id FROM ingest_sessions WHERE ended_at IS NULL AND revoked_at IS NULL "
                "  AND next_thumbnail_at <= now() AND id = ANY(:held) "
                "  ORDER BY next_thumbnail_at LIMIT 10 FOR UPDATE SKIP LOCKED) "
                "RETURNING id, channel_id"
            ).bindparams(interval=s.thumbnail_interval_seconds, held=held))).all()
            await session.commit()
        published = 0
        for session_id, channel_id in due:
            published += await self._refresh(runtime, session_id, channel_id)
        return published

    async def _refresh(self, runtime: ServiceRuntime, session_id: str, channel_id: str) -> int:
        s = self.settings
        segment = latest_segment(self.origin, session_id)
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
