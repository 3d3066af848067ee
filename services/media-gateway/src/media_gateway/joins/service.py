"""A stream's parts -> one VOD: `stream.vod_requested` (the streams service, once every part's
recording is in) queues a job; a worker fetches the parts' MP4s from the object store, joins them
in the order given with ffmpeg, stores the result under `<vod_key_prefix>/<stream id>.mp4` and
publishes `media.vod.joined`.

Parts of one encoder (an OBS reconnect) have the same codec parameters: the concat demuxer joins
them as they are (`-c copy`, seconds for hours of video). Parts whose parameters differ (the
creator changed resolution or encoder between connections) are re-encoded to the first part's
picture, since a player cannot switch decoder set-ups inside one MP4 (docs/architecture.md).

The job is durable and claimed like a recording's (recordings/service.py): heartbeated while
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts.envelope import Envelope
from contracts.events.media import VodJoined
from contracts.events.streams import StreamVodRequested
from contracts.subjects import MEDIA_VOD_JOINED
from servicekit.db import Database
from servicekit.outbox import stage_event
from servicekit.storage import ObjectStore
from sqlalchemy import event as orm_event
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from media_gateway import media
from media_gateway.config import Settings
from media_gateway.ingest.service import SOURCE
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


class JoinWorker:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self, db: Database, store: ObjectStore) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                worked = await self.process_next(db, store)
            except Exception as exc:  # noqa: BLE001  the worker outlives any one failure
                log.warning("vod join pass failed", extra={"error": repr(exc)})
                worked = False
            if worked:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.recording_poll_seconds)
            except TimeoutError:
                pass

    async def _claim(self, db: Database) -> Job | None:
        async with db.session() as session:
            row = (await session.exec(text(
                "UPDATE vod_joins SET status = 'processing', attempts = attempts + 1, updated_at = now() "
                "WHERE stream_id = ("
                "  SELECT stream_id FROM vod_joins"
                "  WHERE (status = 'pending' AND next_attempt_at <= now())"
                "     OR (status = 'processing' AND updated_at < now() - make_interval(secs => :stale))"
                "  ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING stream_id, channel_id, parts, attempts"
            ).bindparams(stale=self.settings.recording_stale_seconds))).first()
            await session.commit()
        return Job(row.stream_id, row.channel_id, tuple(row.parts), row.attempts) if row else None

    async def process_next(self, db: Database, store: ObjectStore) -> bool:
        """Join one due stream's parts; False when none was due."""
        job = await self._claim(db)
        if job is None:
            return False
        s = self.settings
        # this claim's own folder: the parts as downloaded and the joined file, gone once stored
        workdir = s.vod_dir / "joins" / f"{job.stream_id}.{job.attempts}"
        work = asyncio.create_task(self._join(job, workdir, store))
        lost = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(db, job, work, lost))
        started = time.monotonic()
        try:
            duration, reencoded = await work
        except asyncio.CancelledError:
            if not lost.is_set():
                raise  # the worker is stopping
            log.warning("vod join claim taken over; this join stopped", extra={"streamId": job.stream_id})
            return True
        except Exception as exc:  # noqa: BLE001  recorded on the job, retried or given up
            await self._failed(db, job, exc)
            return True
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        vod_url = f"{s.vod_base_url.rstrip('/')}/{job.stream_id}.mp4"
        async with db.session() as session:
            row = await session.get(VodJoin, job.stream_id, with_for_update=True)
            if row is None or row.status != JoinStatus.PROCESSING.value or row.attempts != job.attempts:
                log.warning("vod join claim taken over; the other claim publishes", extra={"streamId": job.stream_id})
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

    async def _heartbeat(self, db: Database, job: Job, work: asyncio.Task, lost: asyncio.Event) -> None:
        """Keep the claim fresh while ffmpeg runs; stop the join once another worker holds the job."""
        while True:
            await asyncio.sleep(self.settings.recording_heartbeat_seconds)
            try:
                async with db.session() as session:
                    beat = (await session.exec(text(
                        "UPDATE vod_joins SET updated_at = now() WHERE stream_id = :sid "
                        "AND status = 'processing' AND attempts = :claim RETURNING stream_id")
                        .bindparams(sid=job.stream_id, claim=job.attempts))).first()
                    await session.commit()
            except Exception as exc:  # noqa: BLE001  a missed beat is retried; the stale limit spans several
                log.warning("vod join heartbeat failed", extra={"streamId": job.stream_id, "error": repr(exc)})
                continue
            if beat is None:
                lost.set()
                work.cancel()
                return

    async def _failed(self, db: Database, job: Job, exc: Exception) -> None:
        final = job.attempts >= self.settings.recording_max_attempts
        async with db.session() as session:
            row = await session.get(VodJoin, job.stream_id, with_for_update=True)
            if row is not None and row.status == JoinStatus.PROCESSING.value and row.attempts == job.attempts:
                row.status = (JoinStatus.FAILED if final else JoinStatus.PENDING).value
                row.error = str(exc)[:2000]
                row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=10 * 3 ** (job.attempts - 1))
                row.updated_at = datetime.now(UTC)
                session.add(row)
                await session.commit()
        (log.error if final else log.warning)(
            "vod join failed" + ("; giving up (the stream keeps its longest part)" if final else "; will retry"),
            extra={"streamId": job.stream_id, "attempt": job.attempts, "error": str(exc)[:500]})
