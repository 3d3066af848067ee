"""Retention of the media gateway's history (issue 14, item 10), run by the runtime's retention job."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from servicekit.db import Database
from servicekit.retention import Prune
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import String

from media_gateway.config import Settings
from media_gateway.ingest.service import session_id_from_stream_name

log = logging.getLogger("media_gateway.retention")

# vod_dir holds only a claim's MP4 (`<sid>.<attempt>.mp4`) and ffmpeg's partial of it
# (`.<sid>.<attempt>.mp4.<claim>.partial`) while the remux runs; anything else there is not ours
_VOD_LEFTOVER = re.compile(r"\.?([0-9a-f]{32})\.\d+\.mp4(\.[^/]*\.partial)?")


def prunes(settings: Settings) -> list[Prune]:
    return [
        Prune("provider_events", "received_at < now() - make_interval(secs => :secs)",
              lambda: {"secs": settings.provider_events_retention_days * 86400}),
        # the session's recording job goes with it (ON DELETE CASCADE), but never one still being
        # turned into a VOD
        Prune("ingest_sessions",
              "ended_at < now() - make_interval(secs => :secs) AND NOT EXISTS ("
              "SELECT 1 FROM recordings r WHERE r.session_id = ingest_sessions.id "
              "AND r.status IN ('pending', 'processing'))",
              lambda: {"secs": settings.ingest_sessions_retention_days * 86400}),
        # a finished join's row is only its record (the VOD lives in the store): kept as long as
        # the sessions it joined
        Prune("vod_joins", "status IN ('ready', 'failed') AND updated_at < now() - make_interval(secs => :secs)",
              lambda: {"secs": settings.ingest_sessions_retention_days * 86400}),
    ]


def _old_files(folder: Path, horizon: float, session_of) -> dict[str, list[Path]]:
    """Files of `folder` untouched since `horizon` (epoch seconds), by the session they belong to."""
    found: dict[str, list[Path]] = {}
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return found
    for path in entries:
        session_id = session_of(path.name)
        if session_id is None:
            continue
        try:
            if not path.is_file() or path.stat().st_mtime >= horizon:
                continue
        except OSError:  # removed meanwhile (the remux finished, another replica pruned it)
            continue
        found.setdefault(session_id, []).append(path)
    return found


def _recording_session(name: str) -> str | None:
    return session_id_from_stream_name(name.removesuffix(".flv")) if name.endswith(".flv") else None


def _vod_session(name: str) -> str | None:
    match = _VOD_LEFTOVER.fullmatch(name)
    return match.group(1) if match else None


async def prune_recording_files(db: Database, settings: Settings) -> int:
    """Delete raw recordings and remux leftovers nothing will make a VOD of any more; returns how
    many files were deleted."""
    horizon = time.time() - settings.recording_files_retention_hours * 3600
    raw = {} if settings.keep_recordings else _old_files(settings.record_dir, horizon, _recording_session)
    leftovers = _old_files(settings.vod_dir, horizon, _vod_session)
    sessions = list(raw.keys() | leftovers.keys())
    if not sessions:
        return 0
    # one row per file's session: whether the session is known and open, and its job's state
    statement = text(
        "SELECT ids.id, s.id IS NOT NULL AS known, s.ended_at IS NULL AS open, r.status "
        "FROM unnest(:ids) AS ids(id) "
        "LEFT JOIN ingest_sessions s ON s.id = ids.id LEFT JOIN recordings r ON r.session_id = ids.id"
    ).bindparams(bindparam("ids", type_=ARRAY(String)))
    async with db.session() as session:
        states = {row.id: row for row in (await session.exec(statement.bindparams(ids=sessions))).all()}
    doomed: list[Path] = []
    for session_id, paths in raw.items():
        state = states[session_id]
        # an ended session without a job still becomes a VOD (the orphan sweep queues it)
        if not state.known or (not state.open and state.status in ("ready", "failed")):
            doomed += paths
    for session_id, paths in leftovers.items():
        state = states[session_id]
        # a leftover is never read again once its claim is over; a live job may still be its claim
        if not state.known or (not state.open and state.status not in ("pending", "processing")):
            doomed += paths
    removed = 0
    for path in doomed:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:  # another replica, or the job's own cleanup, was first
            pass
    if removed:
        log.info("old recording files deleted", extra={"files": removed})
    return removed
