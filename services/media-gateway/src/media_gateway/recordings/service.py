"""Recordings -> VODs: on_record_done queues a job, a worker remuxes the FLV to MP4 with ffmpeg,
measures it with ffprobe, stores it in the object store (S3 or a folder) under
`<vod_key_prefix>/<session>.mp4` and publishes `media.recording.ready`.

The job lives in the `recordings` table, so the callback answers at once and a crash mid-way
only delays the VOD. A worker heartbeats its job (`updated_at`) while ffmpeg runs; a job whose
heartbeat stopped (the worker died) is claimed again. Each claim counts `attempts` and remuxes into
a temporary file of its own; only the job's current claim publishes the VOD, and a worker that
finds its claim taken over stops its ffmpeg (jobs.py, shared with the VOD joins).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events.media import RecordingReady
from contracts.subjects import MEDIA_RECORDING_READY
from servicekit.db import Database
from servicekit.outbox import stage_event
from servicekit.storage import ObjectStore

from media_gateway import media
from media_gateway.config import Settings
from media_gateway.ingest.models import IngestSession
from media_gateway.ingest.service import SOURCE, session_id_from_stream_name
from media_gateway.jobs import JobTable, JobWorker
from media_gateway.recordings.models import Recording, RecordingStatus

log = logging.getLogger("media_gateway.recordings")


class BadRecording(ValueError):
    """The callback names no recording of ours (outside the record root, unknown session...)."""


def recording_session_id(settings: Settings, raw_path: str) -> tuple[str, Path]:
    """Check that nginx-rtmp's `path` is a recording inside the record root; -> (session id, path)."""
    if not raw_path or "\x00" in raw_path:
        raise BadRecording("no recording path")
    path = Path(raw_path)
    if not path.is_absolute():
        raise BadRecording("the recording path is not absolute")
    resolved = path.resolve()
    if not resolved.is_relative_to(settings.record_dir):
        raise BadRecording("the recording is outside the record root")
    if resolved.suffix != ".flv" or not resolved.is_file():
        raise BadRecording("no such recording file")
    session_id = session_id_from_stream_name(resolved.stem)
    if session_id is None:
        raise BadRecording("the recording is not named after an ingest session")
    return session_id, resolved


async def queue_recording(session: AsyncSession, settings: Settings, raw_path: str) -> Recording:
    session_id, path = recording_session_id(settings, raw_path)
    ingest = await session.get(IngestSession, session_id)
    if ingest is None:
        raise BadRecording("unknown ingest session")
    await session.exec(insert(Recording).values(
        session_id=session_id, channel_id=ingest.channel_id, path=str(path),
        status=RecordingStatus.PENDING.value).on_conflict_do_nothing(index_elements=["session_id"]))
    row = await session.get(Recording, session_id)
    assert row is not None
    return row


def vod_key(settings: Settings, session_id: str) -> str:
    """Where a session's VOD lives in the object store; the gateway serves vod_base_url from there."""
    return f"{settings.vod_key_prefix.strip('/')}/{session_id}.mp4"


@dataclass(frozen=True)
class Job:
    session_id: str
    channel_id: str
    path: Path
    attempts: int


class RecordingWorker(JobWorker):
    jobs = JobTable(Recording, ("session_id", "channel_id", "path", "attempts"), log,
                    name="recording", work="remux", key_field="sessionId")
    _last_sweep = 0.0

    async def run(self, db: Database, store: ObjectStore) -> None:
        self._last_sweep = time.monotonic()
        await super().run(db, store)

    async def idle(self, db: Database) -> bool:
        if time.monotonic() - self._last_sweep < self.settings.recording_sweep_seconds:
            return False
        self._last_sweep = time.monotonic()
        return await self.sweep_orphans(db) > 0

    async def sweep_orphans(self, db: Database) -> int:
        """Queue finished recordings whose on_record_done never arrived (this service was down)."""
        s = self.settings
        now = time.time()
        found: dict[str, Path] = {}
        for path in s.record_dir.glob("*.flv"):
            try:
                idle = now - path.stat().st_mtime
            except OSError:
                continue
            session_id = session_id_from_stream_name(path.stem)
            if session_id is not None and idle >= s.recording_orphan_seconds:
                found[session_id] = path
        if not found:
            return 0
        queued = 0
        async with db.session() as session:
            ended = (await session.exec(select(IngestSession).where(
                col(IngestSession.id).in_(list(found)), col(IngestSession.ended_at).is_not(None)))).all()
            for row in ended:
                inserted = (await session.exec(insert(Recording).values(
                    session_id=row.id, channel_id=row.channel_id, path=str(found[row.id]),
                    status=RecordingStatus.PENDING.value).on_conflict_do_nothing(index_elements=["session_id"])
                    .returning(Recording.session_id))).first()
                if inserted is not None:
                    queued += 1
                    log.warning("orphaned recording queued", extra={"sessionId": row.id})
            await session.commit()
        return queued

    async def process_next(self, db: Database, store: ObjectStore) -> bool:
        """Turn one due recording into a VOD; False when none was due."""
        claimed = await self.jobs.claim(db, self.settings)
        if claimed is None:
            return False
        job = Job(claimed.session_id, claimed.channel_id, Path(claimed.path), claimed.attempts)
        s = self.settings
        # the remux needs a seekable local file (the MP4 index goes to the front); it lives only
        # until the store has it, and is this claim's own (a claim taken over must not remove or
        # upload another claim's file)
        target = s.vod_dir / f"{job.session_id}.{job.attempts}.mp4"
        try:
            duration = await self.jobs.hold(db, s, job.session_id, job.attempts, self._remux(job, target, store))
        finally:
            target.unlink(missing_ok=True)
        if duration is None:
            return True
        vod_url = f"{s.vod_base_url.rstrip('/')}/{job.session_id}.mp4"
        async with db.session() as session:
            row = await self.jobs.still_held(session, job.session_id, job.attempts)
            if row is None:
                return True
            row.status = RecordingStatus.READY.value
            row.vod_url = vod_url
            row.duration_seconds = duration
            row.error = None
            row.updated_at = datetime.now(UTC)
            session.add(row)
            await stage_event(session, MEDIA_RECORDING_READY, RecordingReady(
                channel_id=job.channel_id, ingest_session_id=job.session_id, vod_url=vod_url,
                duration_seconds=duration), source=SOURCE, key=job.channel_id)
            await session.commit()
        log.info("recording ready", extra={"sessionId": job.session_id, "durationSeconds": round(duration, 3)})
        if not s.keep_recordings:
            job.path.unlink(missing_ok=True)
        return True

    async def _remux(self, job: Job, target: Path, store: ObjectStore) -> float:
        """Remux, measure and upload, all inside the heartbeat (a long upload keeps the claim too)."""
        s = self.settings
        if not job.path.is_file():
            raise media.MediaError("the recording file is gone")
        await media.remux_to_mp4(s.ffmpeg_binary, job.path, target,
                                 claim=f"{job.attempts}-{secrets.token_hex(4)}")
        duration = await media.probe_duration(s.ffprobe_binary, target)
        await store.put_file(vod_key(s, job.session_id), target, "video/mp4")
        return duration
