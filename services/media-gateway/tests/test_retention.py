"""Provider events and ended ingest sessions are pruned (issue 14, item 10)."""

from __future__ import annotations

import uuid

import psycopg
from servicekit.db import Database, libpq_dsn
from servicekit.retention import RetentionJob

from media_gateway.retention import prunes


def _session(conn, *, ended_days_ago: int | None, recording: str | None = None) -> str:
    sid = uuid.uuid4().hex
    conn.execute("INSERT INTO ingest_sessions (id, channel_id, provider, app, client_id, key_digest, "
                 "relay_name, started_at, ended_at) "
                 "VALUES (%s, 'ch', 'local', 'live', %s, 'd', 'r', now() - interval '200 days', "
                 "CASE WHEN %s::float IS NULL THEN NULL ELSE now() - make_interval(days => %s::int) END)",
                 (sid, sid, ended_days_ago, ended_days_ago))
    if recording is not None:
        conn.execute("INSERT INTO recordings (session_id, channel_id, path, status, attempts) "
                     "VALUES (%s, 'ch', '/x.flv', %s, 0)", (sid, recording))
    return sid


async def test_old_provider_events_and_ended_sessions_are_pruned_open_and_busy_ones_kept(media_db_url,
                                                                                          media_settings):
    with psycopg.connect(libpq_dsn(media_db_url), autocommit=True) as conn:
        for days in (45, 31, 29, 0):
            conn.execute("INSERT INTO provider_events "
                         "(id, provider, event_id, event_type, outcome, received_at) "
                         "VALUES (%s, 'mux', %s, 'video.live_stream.active', 'applied', "
                         "now() - make_interval(days => %s))", (uuid.uuid4(), f"e{days}", days))
        old = _session(conn, ended_days_ago=100)
        old_done = _session(conn, ended_days_ago=100, recording="ready")
        old_busy = _session(conn, ended_days_ago=100, recording="processing")
        recent = _session(conn, ended_days_ago=10)
        live = _session(conn, ended_days_ago=None)

    db = Database(media_db_url)
    try:
        assert await RetentionJob(db, prunes(media_settings)).run_once() == {
            "provider_events": 2, "ingest_sessions": 2}
    finally:
        await db.dispose()

    with psycopg.connect(libpq_dsn(media_db_url)) as conn:
        events = sorted(r[0] for r in conn.execute("SELECT event_id FROM provider_events"))
        sessions = {r[0] for r in conn.execute("SELECT id FROM ingest_sessions")}
        recordings = {r[0] for r in conn.execute("SELECT session_id FROM recordings")}
    assert events == ["e0", "e29"]
    assert sessions == {old_busy, recent, live}
    assert old not in sessions and old_done not in sessions
    assert recordings == {old_busy}
