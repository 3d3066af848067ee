"""The durable job steps both VOD workers share (jobs.py), on each of their tables in real
PostgreSQL: a claim heartbeated past the stale limit stays its worker's, a claim taken over stops
its work and leaves the row to the new claim, and a failing job is retried after 10 s, 30 s and
then given up."""

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import pytest
from servicekit.db import Database
from sqlalchemy import text

from media_gateway.config import Settings
from media_gateway.jobs import JobTable
from media_gateway.joins.service import JoinWorker
from media_gateway.recordings.service import RecordingWorker

TABLES = [pytest.param(RecordingWorker.jobs, id="recordings"), pytest.param(JoinWorker.jobs, id="vod_joins")]


@pytest.fixture
async def db(media_db_url):
    database = Database(media_db_url, pool_size=3)
    yield database
    await database.dispose()


@pytest.fixture
def settings(media_db_url, tmp_path) -> Settings:
    return Settings(database_url=media_db_url, data_dir=tmp_path, recording_heartbeat_seconds=0.05,
                    recording_stale_seconds=0.3, recording_max_attempts=3)


async def queue(db: Database, jobs: JobTable) -> str:
    """A due job in the table, as the record_done callback or a vod request queues it."""
    key = uuid.uuid4().hex
    async with db.session() as session:
        if jobs.model.__tablename__ == "recordings":
            await session.exec(text(
                "INSERT INTO ingest_sessions (id, channel_id, provider, node, app, client_id, key_digest, relay_name) "
                "VALUES (:key, 'chan-jobs', 'local', 'ingest-0', 'live', :key, 'd', 'r')").bindparams(key=key))
            await session.exec(text("INSERT INTO recordings (session_id, channel_id, path, status, attempts) "
                                    "VALUES (:key, 'chan-jobs', '/x.flv', 'pending', 0)").bindparams(key=key))
        else:
            await session.exec(text("INSERT INTO vod_joins (stream_id, channel_id, parts, status, attempts) "
                                    "VALUES (:key, 'chan-jobs', ARRAY['a', 'b'], 'pending', 0)").bindparams(key=key))
        await session.commit()
    return key


async def job_row(db: Database, jobs: JobTable, key: str):
    async with db.session() as session:
        row = await session.get(jobs.model, key, populate_existing=True)
        assert row is not None
        return row


async def make_due(db: Database, jobs: JobTable) -> None:
    async with db.session() as session:
        await session.exec(text(f"UPDATE {jobs.model.__tablename__} SET next_attempt_at = now()"))
        await session.commit()


async def take_over(db: Database, settings: Settings, jobs: JobTable):
    """Claim the job as a worker that finds it stale (a limit of 0) does; a few polls, since a
    heartbeat holding or refreshing the row at that instant makes it skip the row, as it should."""
    now_stale = settings.model_copy(update={"recording_stale_seconds": 0})
    for _ in range(50):
        if (claimed := await jobs.claim(db, now_stale)) is not None:
            return claimed
        await asyncio.sleep(0.01)
    raise AssertionError("the job was never claimed again")


def messages(caplog, jobs: JobTable) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == jobs.log.name]


@pytest.mark.parametrize("jobs", TABLES)
async def test_a_heartbeated_claim_is_kept_and_a_claim_taken_over_stops_its_work(db, settings, jobs, caplog):
    caplog.set_level(logging.INFO)
    key = await queue(db, jobs)
    first = await jobs.claim(db, settings)
    assert first is not None and first.attempts == 1 and getattr(first, jobs.returning[0]) == key
    stopped = asyncio.Event()

    async def work() -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "done"

    held = asyncio.create_task(jobs.hold(db, settings, key, 1, work()))
    await asyncio.sleep(settings.recording_stale_seconds * 2)
    assert await jobs.claim(db, settings) is None, "a heartbeated job was claimed again"

    # its worker looks gone (here: a stale limit of 0), so another worker claims the job
    second = await take_over(db, settings, jobs)
    assert second.attempts == 2
    assert await asyncio.wait_for(held, 5) is None
    assert stopped.is_set()
    assert (logging.WARNING, f"{jobs.name} claim taken over; this {jobs.work} stopped") in messages(caplog, jobs)

    row = await job_row(db, jobs, key)
    assert (row.status, row.attempts, row.error) == ("processing", 2, None)
    async with db.session() as session:
        assert await jobs.still_held(session, key, 1) is None
    async with db.session() as session:
        assert await jobs.still_held(session, key, 2) is not None
    assert (logging.WARNING, f"{jobs.name} claim taken over; the other claim publishes") in messages(caplog, jobs)


@pytest.mark.parametrize("jobs", TABLES)
async def test_a_failing_job_is_retried_after_10_then_30_seconds_then_given_up(db, settings, jobs, caplog):
    caplog.set_level(logging.INFO)
    key = await queue(db, jobs)
    for attempt, delay, status in [(1, 10, "pending"), (2, 30, "pending"), (3, 90, "failed")]:
        claimed = await jobs.claim(db, settings)
        assert claimed is not None and claimed.attempts == attempt

        async def work(attempt: int = attempt) -> str:
            raise RuntimeError(f"ffmpeg broke on attempt {attempt}")

        before = datetime.now(UTC)
        assert await jobs.hold(db, settings, key, attempt, work()) is None
        after = datetime.now(UTC)
        row = await job_row(db, jobs, key)
        assert (row.status, row.attempts, row.error) == (status, attempt, f"ffmpeg broke on attempt {attempt}")
        assert delay <= (row.next_attempt_at - before).total_seconds()
        assert (row.next_attempt_at - after).total_seconds() <= delay
        assert await jobs.claim(db, settings) is None, "claimed again before its retry was due"
        await make_due(db, jobs)

    assert await jobs.claim(db, settings) is None, "a job given up was claimed again"
    assert [m for m in messages(caplog, jobs) if m[1].startswith(f"{jobs.name} failed")] == [
        (logging.WARNING, f"{jobs.name} failed; will retry"),
        (logging.WARNING, f"{jobs.name} failed; will retry"),
        (logging.ERROR, f"{jobs.name} failed; giving up{jobs.give_up}"),
    ]


@pytest.mark.parametrize("jobs", TABLES)
async def test_a_failure_after_the_claim_was_taken_over_leaves_the_job_to_the_new_claim(db, settings, jobs):
    key = await queue(db, jobs)
    assert (await jobs.claim(db, settings)).attempts == 1
    assert (await take_over(db, settings, jobs)).attempts == 2

    async def work() -> str:
        raise RuntimeError("the first claim's ffmpeg broke late")

    assert await jobs.hold(db, settings, key, 1, work()) is None
    row = await job_row(db, jobs, key)
    assert (row.status, row.attempts, row.error) == ("processing", 2, None)
