"""A stream's parts -> one VOD: `stream.vod_requested` (the streams service, once every part's
recording is in) queues a job; a worker fetches the parts' MP4s from the object store, joins them
in the order given with ffmpeg, stores the result under `<vod_key_prefix>/<stream id>.mp4` and
publishes `media.vod.joined`.

Parts of one encoder (an OBS reconnect) have the same codec parameters: the concat demuxer joins
them as they are (`-c copy`, seconds for hours of video). Parts whose parameters differ (the
creator changed resolution or encoder between connections) are re-encoded to the first part's
picture, since a player cannot switch decoder set-ups inside one MP4 (docs/architecture.md).

The job is durable and claimed like a recording's (jobs.py): heartbeated while
ffmpeg runs, claimed again when the heartbeat stops, retried with a backoff, given up after
recording_max_attempts (the streams service then keeps the longest part as the VOD). The part
objects stay in the store: until the joined VOD is announced the streams service may still list
one of them.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from contracts.envelope import Envelope
from contracts.events.media import VodJoined
from contracts.events.streams import StreamVodRequested
from contracts.subjects import MEDIA_VOD_JOINED
from servicekit.db import Database
from servicekit.outbox import stage_event
from servicekit.storage import ObjectStore
from sqlalchemy import event as orm_event
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from media_gateway import media
from media_gateway.config import Settings
from media_gateway.ingest.service import SOURCE
from media_gateway.jobs import JobTable, JobWorker
from media_gateway.joins.models import JoinStatus, VodJoin
from media_gateway.recordings.service import vod_key

log = logging.getLogger("media_gateway.joins")


def joined_key(settings: Settings, stream_id: str) -> str:
    """Where a stream's joined VOD lives (a stream id never collides with a session's 32 hex)."""
    return f"{settings.vod_key_prefix.strip('/')}/{stream_id}.mp4"


def make_join_handler(worker: JoinWorker):
    """InboxConsumer handler for `stream.vod_requested`: queue the job, wake the worker once the
    job is committed (the consumer commits after the handler returns)."""

    async def handle(session: AsyncSession, event: Envelope) -> None:
        data = event.data
        if not isinstance(data, StreamVodRequested) or len(data.ingest_session_ids) < 2:
            log.warning("vod request without parts to join ignored", extra={"eventId": event.id})
            return
        await session.exec(insert(VodJoin).values(
            stream_id=data.stream_id, channel_id=data.channel_id, parts=list(data.ingest_session_ids),
            status=JoinStatus.PENDING.value).on_conflict_do_nothing(index_elements=["stream_id"]))
        orm_event.listen(session.sync_session, "after_commit", lambda _: worker.wake(), once=True)
        log.info("vod join queued", extra={"streamId": data.stream_id, "parts": len(data.ingest_session_ids)})

    return handle


@dataclass(frozen=True)
class Job:
    stream_id: str
    channel_id: str
    parts: tuple[str, ...]
    attempts: int


class JoinWorker(JobWorker):
    jobs = JobTable(VodJoin, ("stream_id", "channel_id", "parts", "attempts"), log, name="vod join", work="join",
                    key_field="streamId", give_up=" (the stream keeps its longest part)")

    async def process_next(self, db: Database, store: ObjectStore) -> bool:
        """Join one due stream's parts; False when none was due."""
        claimed = await self.jobs.claim(db, self.settings)
        if claimed is None:
            return False
        job = Job(claimed.stream_id, claimed.channel_id, tuple(claimed.parts), claimed.attempts)
        s = self.settings
        # this claim's own folder: the parts as downloaded and the joined file, gone once stored
        workdir = s.vod_dir / "joins" / f"{job.stream_id}.{job.attempts}"
        started = time.monotonic()
        try:
            joined = await self.jobs.hold(db, s, job.stream_id, job.attempts, self._join(job, workdir, store))
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        if joined is None:
            return True
        duration, reencoded = joined
        vod_url = f"{s.vod_base_url.rstrip('/')}/{job.stream_id}.mp4"
        async with db.session() as session:
            row = await self.jobs.still_held(session, job.stream_id, job.attempts)
            if row is None:
                return True
            row.status = JoinStatus.READY.value
            row.vod_url, row.duration_seconds, row.reencoded, row.error = vod_url, duration, reencoded, None
            row.updated_at = datetime.now(UTC)
            session.add(row)
            await stage_event(session, MEDIA_VOD_JOINED, VodJoined(
                stream_id=job.stream_id, channel_id=job.channel_id, ingest_session_ids=list(job.parts),
                vod_url=vod_url, duration_seconds=duration, reencoded=reencoded),
                source=SOURCE, key=job.channel_id)
            await session.commit()
        log.info("vod joined", extra={"streamId": job.stream_id, "parts": len(job.parts), "reencoded": reencoded,
                                      "durationSeconds": round(duration, 3),
                                      "tookSeconds": round(time.monotonic() - started, 3)})
        return True

    async def _join(self, job: Job, workdir: Path, store: ObjectStore) -> tuple[float, bool]:
        """Fetch, join, measure and upload, all inside the heartbeat; -> (duration, re-encoded)."""
        s = self.settings
        workdir.mkdir(parents=True, exist_ok=True)
        sources: list[Path] = []
        for index, session_id in enumerate(job.parts):
            path = workdir / f"{index}.mp4"
            await store.get_file(vod_key(s, session_id), path)
            sources.append(path)
        described = [await media.probe_streams(s.ffprobe_binary, path) for path in sources]
        target = workdir / "joined.mp4"
        reencoded = not media.can_copy(described)
        if reencoded:
            log.warning("the parts' encoder settings differ; re-encoding them into one VOD",
                        extra={"streamId": job.stream_id})
            durations = [await media.probe_duration(s.ffprobe_binary, path) for path in sources]
            await media.concat_reencode(s.ffmpeg_binary, list(zip(sources, described, durations, strict=True)),
                                        target)
        else:
            await media.concat_copy(s.ffmpeg_binary, sources, target)
        duration = await media.probe_duration(s.ffprobe_binary, target)
        await store.put_file(joined_key(s, job.stream_id), target, "video/mp4")
        return duration, reencoded
