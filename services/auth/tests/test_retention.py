"""Refresh tokens are pruned some days after they expire (issue 14, item 10)."""

from __future__ import annotations

import psycopg
from servicekit.db import Database, libpq_dsn
from servicekit.retention import RetentionJob

from auth_service.sessions.retention import prunes


async def test_refresh_tokens_are_deleted_a_week_after_expiry_and_live_ones_kept(
        client, register, auth_settings, auth_db_url):
    old, recent, live = [await register() for _ in range(3)]
    with psycopg.connect(libpq_dsn(auth_db_url), autocommit=True) as conn:
        for result, expired_days_ago in ((old, 8), (recent, 6)):
            conn.execute("UPDATE refresh_tokens SET expires_at = now() - make_interval(days => %s) "
                         "WHERE user_id = %s", (expired_days_ago, result["user"]["id"]))

    db = Database(auth_db_url)
    try:
        assert await RetentionJob(db, prunes(auth_settings)).run_once() == {"refresh_tokens": 1}
    finally:
        await db.dispose()

    with psycopg.connect(libpq_dsn(auth_db_url)) as conn:
        left = {str(r[0]) for r in conn.execute("SELECT user_id FROM refresh_tokens")}
    assert left == {recent["user"]["id"], live["user"]["id"]}
    # the live one still works
    r = await client.post("/api/auth/refresh", json={"refreshToken": live["refreshToken"]})
    assert r.status_code == 200, r.text
