"""Provider events, ended ingest sessions and recording files are pruned (issue 14, item 10)."""

from __future__ import annotations

import os
import time
import uuid

import psycopg
from servicekit.db import Database, libpq_dsn
from servicekit.retention import RetentionJob, Sweep

from media_gateway.retention import prune_recording_files, prunes


def _session(conn, *, ended_days_ago: int | None, recording: str | None = None) -> str:
    sid = uuid.uuid4().hex
    conn.execute("INSERT INTO ingest_sessions (id, channel_id, provider, node, app, client_id, key_digest, "
                 "relay_name, started_at, ended_at) "
                 "VALUES (%s, 'ch', 'local', 'ingest-0', 'live', %s, 'd', 'r', now() - interval '200 days', "
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
        for stream, status, days in (("joined-old", "ready", 100), ("failed-old", "failed", 100),
                                     ("busy-old", "processing", 100), ("joined-recent", "ready", 10)):
            conn.execute("INSERT INTO vod_joins (stream_id, channel_id, parts, status, attempts, updated_at) "
                         "VALUES (%s, 'ch', ARRAY['a', 'b'], %s, 1, now() - make_interval(days => %s))",
                         (stream, status, days))

    db = Database(media_db_url)
    try:
        assert await RetentionJob(db, prunes(media_settings)).run_once() == {
            "provider_events": 2, "ingest_sessions": 2, "vod_joins": 2}
    finally:
        await db.dispose()

    with psycopg.connect(libpq_dsn(media_db_url)) as conn:
        events = sorted(r[0] for r in conn.execute("SELECT event_id FROM provider_events"))
        sessions = {r[0] for r in conn.execute("SELECT id FROM ingest_sessions")}
        recordings = {r[0] for r in conn.execute("SELECT session_id FROM recordings")}
        joins = {r[0] for r in conn.execute("SELECT stream_id FROM vod_joins")}
    assert joins == {"busy-old", "joined-recent"}
    assert events == ["e0", "e29"]
    assert sessions == {old_busy, recent, live}
    assert old not in sessions and old_done not in sessions
    assert recordings == {old_busy}


def _file(path, *, hours_old: float) -> None:
    path.write_bytes(b"FLV\x01")
    stamp = time.time() - hours_old * 3600
    os.utime(path, (stamp, stamp))


async def test_recording_files_go_once_nothing_will_make_a_vod_of_them(media_db_url, media_settings):
    record, vod = media_settings.record_dir, media_settings.vod_dir
    with psycopg.connect(libpq_dsn(media_db_url), autocommit=True) as conn:
        live = _session(conn, ended_days_ago=None)
        ready = _session(conn, ended_days_ago=2, recording="ready")
        failed = _session(conn, ended_days_ago=2, recording="failed")
        pending = _session(conn, ended_days_ago=2, recording="pending")
        busy = _session(conn, ended_days_ago=2, recording="processing")
        unqueued = _session(conn, ended_days_ago=2)  # on_record_done lost: the orphan sweep queues it
        recent = _session(conn, ended_days_ago=0, recording="ready")
    gone = uuid.uuid4().hex  # its session was pruned (or never ours)
    old = 25
    files = {
        "live": record / f"{live}_src.flv",
        "ready": record / f"{ready}_src.flv", "failed": record / f"{failed}_src.flv",
        "pending": record / f"{pending}_src.flv", "busy": record / f"{busy}_src.flv",
        "unqueued": record / f"{unqueued}_src.flv", "gone": record / f"{gone}_src.flv",
        "not-a-session": record / "notes.flv",
        "ready-mp4": vod / f"{ready}.1.mp4", "ready-partial": vod / f".{ready}.2.mp4.2-ab12cd34.partial",
        "failed-mp4": vod / f"{failed}.3.mp4", "unqueued-mp4": vod / f"{unqueued}.1.mp4",
        "gone-mp4": vod / f"{gone}.1.mp4",
        "busy-mp4": vod / f"{busy}.1.mp4", "pending-partial": vod / f".{pending}.1.mp4.1-ab12cd34.partial",
        "live-mp4": vod / f"{live}.1.mp4", "other-mp4": vod / f"{ready}.mp4",
    }
    for path in files.values():
        _file(path, hours_old=old)
    _file(young := record / f"{recent}_src.flv", hours_old=23)
    files["young"] = young

    db = Database(media_db_url)
    try:
        assert await prune_recording_files(db, media_settings) == 8
        left = {name for name, path in files.items() if path.exists()}
        assert left == {"live", "pending", "busy", "unqueued", "not-a-session", "young", "busy-mp4",
                        "pending-partial", "live-mp4", "other-mp4"}
        # an operator who keeps raw recordings keeps them; remux leftovers still go
        _file(files["ready"], hours_old=old)
        _file(files["ready-mp4"], hours_old=old)
        kept = media_settings.model_copy(update={"keep_recordings": True})
        assert await prune_recording_files(db, kept) == 1
        assert files["ready"].exists() and not files["ready-mp4"].exists()
        # the service's own retention pass runs it
        job = RetentionJob(db, [], sweeps=[Sweep("recording_files",
                                                 lambda: prune_recording_files(db, media_settings))])
        assert await job.run_once() == {"recording_files": 1}
        assert not files["ready"].exists()
    finally:
        await db.dispose()
