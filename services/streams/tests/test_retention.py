"""Stream history is kept unless an operator sets STREAMS_RETENTION_DAYS (issue 14, item 10)."""

import uuid

import psycopg
from servicekit.db import Database, libpq_dsn
from servicekit.retention import RetentionJob
from streams_service.config import Settings
from streams_service.retention import prunes


async def test_archived_streams_are_kept_unless_a_horizon_is_set(streams_db_url):
    with psycopg.connect(libpq_dsn(streams_db_url), autocommit=True) as conn:
        for title, status, ended_days_ago in (("old", "ARCHIVED", 400), ("recent", "ARCHIVED", 10),
                                              ("never-live", "ARCHIVED", None), ("live", "LIVE", None)):
            conn.execute("INSERT INTO streams (id, channel_id, title, status, end_time, created_at, viewer_count, "
                         "peak_viewers, is_archived) VALUES "
                         "(%s, %s, %s, %s, now() - make_interval(days => %s), now() - interval '500 days', 0, 0, false)",
                         (uuid.uuid4(), title, title, status, ended_days_ago))
        conn.execute("UPDATE streams SET end_time = NULL WHERE title IN ('never-live', 'live')")

    async def prune(settings: Settings) -> dict[str, int]:
        db = Database(streams_db_url)
        try:
            return await RetentionJob(db, prunes(settings)).run_once()
        finally:
            await db.dispose()

    assert await prune(Settings(database_url=streams_db_url)) == {}
    assert await prune(Settings(database_url=streams_db_url, streams_retention_days=365)) == {"streams": 2}
    with psycopg.connect(libpq_dsn(streams_db_url)) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT title FROM streams")) == ["live", "recent"]
