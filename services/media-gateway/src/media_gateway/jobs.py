"""Durable jobs that each have a table of their own: a recording to remux (`recordings`, one row an
ingest session) and a stream's parts to join (`vod_joins`, one row a stream).

A row is `pending` until due (`next_attempt_at`) and `processing` while a worker holds it. Every
claim counts `attempts`, and that count names the claim: a worker holds its job only while the row
is still `processing` at its own count. So a worker whose heartbeat stopped (paused, cut off) while
its ffmpeg went on finds out once its job was claimed again, stops, and leaves the publishing to
the current claim. The heartbeat keeps `updated_at` fresh; a `processing` row older than
recording_stale_seconds lost its worker and is claimed again. A failed attempt is retried after
10 s, 30 s, 90 s... and given up (`failed`) after recording_max_attempts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from servicekit.db import Database
from servicekit.storage import ObjectStore
from sqlalchemy import TextClause, text
from sqlalchemy.engine import Row
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from media_gateway.config import Settings

# the joins' JoinStatus is this enum: both tables hold the same states
from media_gateway.recordings.models import RecordingStatus as JobStatus

M = TypeVar("M", bound=SQLModel)
T = TypeVar("T")


def retry_delay(attempts: int) -> float:
    """Seconds before a job that failed its `attempts`-th claim is due again."""
    return 10 * 3 ** (attempts - 1)


@dataclass(frozen=True)
class JobTable(Generic[M]):
    """How one table's jobs are claimed, heartbeated, retried and logged.

    The SQL names only the model's own table and columns, fixed when the module is imported; a
    job's key and counts are bound parameters."""

    model: type[M]
    # what a claim hands its worker, all of them columns of the model's table
    returning: tuple[str, ...]
    log: logging.Logger
    name: str  # the job in log messages: "recording", "vod join"
    work: str  # what the worker does: "remux", "join"
    key_field: str  # the log field holding the key: "sessionId"
    give_up: str = ""  # said after "giving up": what stands in for the job's result
    _claim_sql: TextClause = field(init=False, repr=False)
    _beat_sql: TextClause = field(init=False, repr=False)

    def __post_init__(self) -> None:
        table = self.model.__table__  # type: ignore[attr-defined]
        (key,) = table.primary_key.columns
        unknown = set(self.returning) - set(table.columns.keys())
        if unknown:
            raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
        object.__setattr__(self, "_claim_sql", text(
            f"UPDATE {table.name} SET status = 'processing', attempts = attempts + 1, updated_at = now() "
            f"WHERE {key.name} = ("
            f"  SELECT {key.name} FROM {table.name}"
            "  WHERE (status = 'pending' AND next_attempt_at <= now())"
            "     OR (status = 'processing' AND updated_at < now() - make_interval(secs => :stale))"
            "  ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
            f"RETURNING {', '.join(self.returning)}"))
        object.__setattr__(self, "_beat_sql", text(
            f"UPDATE {table.name} SET updated_at = now() WHERE {key.name} = :key "
            f"AND status = 'processing' AND attempts = :claim RETURNING {key.name}"))

    async def claim(self, db: Database, settings: Settings) -> Row | None:
        """Take the oldest due job, or one whose worker stopped heartbeating; None when none is."""
        async with db.session() as session:
            row = (await session.exec(self._claim_sql.bindparams(
                stale=settings.recording_stale_seconds))).first()
            await session.commit()
        return row

    async def hold(self, db: Database, settings: Settings, key: str, claim: int,
                   work: Coroutine[Any, Any, T]) -> T | None:
        """Run a claimed job's work under the heartbeat: its result, or None when the work failed
        (the job is retried later or given up) or the claim was taken over (the work is stopped).
        The work must not return None itself."""
        task = asyncio.create_task(work)
        lost = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(db, settings, key, claim, task, lost))
        try:
            return await task
        except asyncio.CancelledError:
            if not lost.is_set():
                raise  # the worker is stopping
            self.log.warning(f"{self.name} claim taken over; this {self.work} stopped",
                             extra={self.key_field: key})
            return None
        except Exception as exc:  # noqa: BLE001  recorded on the job, retried or given up
            await self._failed(db, settings, key, claim, exc)
            return None
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    async def still_held(self, session: AsyncSession, key: str, claim: int) -> M | None:
        """The job's row, locked until the session ends, while this claim holds it; None once
        another claim does, which then publishes the result instead."""
        row = await self._held(session, key, claim)
        if row is None:
            self.log.warning(f"{self.name} claim taken over; the other claim publishes",
                             extra={self.key_field: key})
        return row

    async def _held(self, session: AsyncSession, key: str, claim: int) -> M | None:
        row: Any = await session.get(self.model, key, with_for_update=True)
        if row is None or row.status != JobStatus.PROCESSING.value or row.attempts != claim:
            return None
        return row

    async def _heartbeat(self, db: Database, settings: Settings, key: str, claim: int, work: asyncio.Task,
                         lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(settings.recording_heartbeat_seconds)
            try:
                async with db.session() as session:
                    beat = (await session.exec(self._beat_sql.bindparams(key=key, claim=claim))).first()
                    await session.commit()
            except Exception as exc:  # noqa: BLE001  a missed beat is retried; the stale limit spans several
                self.log.warning(f"{self.name} heartbeat failed", extra={self.key_field: key, "error": repr(exc)})
                continue
            if beat is None:
                lost.set()
                work.cancel()
                return

    async def _failed(self, db: Database, settings: Settings, key: str, claim: int, exc: Exception) -> None:
        final = claim >= settings.recording_max_attempts
        async with db.session() as session:
            row: Any = await self._held(session, key, claim)
            if row is not None:
                row.status = (JobStatus.FAILED if final else JobStatus.PENDING).value
                row.error = str(exc)[:2000]
                row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=retry_delay(claim))
                row.updated_at = datetime.now(UTC)
                session.add(row)
                await session.commit()
        (self.log.error if final else self.log.warning)(
            f"{self.name} failed" + (f"; giving up{self.give_up}" if final else "; will retry"),
            extra={self.key_field: key, "attempt": claim, "error": str(exc)[:500]})


class JobWorker:
    """A loop over one JobTable: a job after another while any is due, else a nap until woken
    (a job was queued) or recording_poll_seconds passed."""

    jobs: JobTable

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
                worked = await self.process_next(db, store) or await self.idle(db)
            except Exception as exc:  # noqa: BLE001  the worker outlives any one failure
                self.jobs.log.warning(f"{self.jobs.name} pass failed", extra={"error": repr(exc)})
                worked = False
            if worked:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.recording_poll_seconds)
            except TimeoutError:
                pass

    async def process_next(self, db: Database, store: ObjectStore) -> bool:
        """Do one due job; False when none was due."""
        raise NotImplementedError

    async def idle(self, db: Database) -> bool:
        """Housekeeping when no job was due; True when it found work."""
        return False
