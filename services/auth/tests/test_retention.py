"""Refresh tokens are pruned some days after they expire, replaced avatars a grace period after
they were replaced (issue 14, item 10)."""

from __future__ import annotations

import asyncio
import io

import psycopg
from PIL import Image
from servicekit.db import Database, libpq_dsn
from servicekit.retention import RetentionJob

from auth_service.sessions.retention import avatar_sweep, prunes


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


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, format="PNG")
    return out.getvalue()


async def test_a_replaced_avatar_is_deleted_a_grace_period_after_and_the_current_one_kept(
        client, register, bearer, auth_app, auth_settings, auth_db_url):
    runtime = auth_app.state.runtime
    user, other = await register(), await register()

    async def upload(who, colour) -> str:
        r = await client.post("/api/upload/avatar", headers=bearer(who),
                              files={"file": ("a.png", _png(colour), "image/png")})
        assert r.status_code == 200, r.text
        return runtime.store.key_of(r.json()["url"])

    first = await upload(user, (255, 0, 0))
    current = await upload(user, (0, 255, 0))
    others = await upload(other, (0, 0, 255))
    # a put whose transaction then failed: nothing ever referred to it
    stray = f"avatars/{user['user']['id']}/0123456789abcdef0123.webp"
    await runtime.store.put(stray, b"RIFF....WEBP", "image/webp")

    grace = 0.3
    settings = auth_settings.model_copy(update={"unreferenced_uploads_grace_days": grace / 86400})
    job = RetentionJob(runtime.db, [], sweeps=[avatar_sweep(settings, runtime).sweep()])

    async def stored() -> set[str]:
        return {key async for chunk in runtime.store.list("avatars") for key, _ in chunk}

    # the default grace is a week: replaced avatars are only noted
    assert auth_settings.unreferenced_uploads_grace_days == 7
    assert await RetentionJob(runtime.db, [], sweeps=[avatar_sweep(auth_settings, runtime).sweep()]
                              ).run_once() == {"avatars": 0}
    await asyncio.sleep(grace + 0.05)
    assert await job.run_once() == {"avatars": 0}  # found unreferenced now: the grace starts
    assert await stored() == {first, current, others, stray}
    with psycopg.connect(libpq_dsn(auth_db_url), autocommit=True) as conn:
        conn.execute("UPDATE unreferenced_objects SET seen_at = now() - interval '1 hour'")
    assert await job.run_once() == {"avatars": 2}
    assert await stored() == {current, others}
    me = await client.get("/api/auth/user", headers=bearer(user))
    assert runtime.store.key_of(me.json()["avatar"]) == current
