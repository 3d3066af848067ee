"""Stored objects no row refers to are deleted a grace period after they were first found
unreferenced, in the local folder and on a real S3 server (issue 14, item 10)."""

from __future__ import annotations

import asyncio

import pytest
from servicekit.retention import RetentionJob, UnreferencedObjects, lock_object_key
from servicekit.settings import ServiceSettings
from servicekit.storage import ObjectStore
from sqlalchemy import text

# long enough that the first pass surely runs inside it, even on a busy machine and a slow S3 put
GRACE = 3.0


@pytest.fixture(params=["folder", "s3"])
def store(request, tmp_path):
    if request.param == "folder":
        settings = ServiceSettings(object_store_url=f"file://{tmp_path}/objects")
    else:
        env = request.getfixturevalue("object_store_env")
        settings = ServiceSettings(**{k.lower(): v for k, v in env.items()})
    return ObjectStore.from_settings(settings)


@pytest.fixture
async def tables(sql):
    await sql("CREATE TABLE unreferenced_objects (key text PRIMARY KEY, seen_at timestamptz NOT NULL)")
    await sql("CREATE TABLE pictures (key text PRIMARY KEY)")


async def test_unreferenced_objects_go_a_grace_period_after_they_were_replaced(db, sql, tables, store):
    async def references(session, keys):
        rows = (await session.execute(text(
            "SELECT key FROM pictures WHERE key = ANY(:keys)"), {"keys": keys})).all()
        return {r[0] for r in rows}

    sweep = UnreferencedObjects(lambda: db, lambda: store, ["pics"], references, grace_seconds=GRACE, name="pics")
    job = RetentionJob(db, [], sweeps=[sweep.sweep()])
    for key in ("pics/u1/a.webp", "pics/u1/b.webp", "other/c.webp"):
        await store.put(key, b"RIFF....WEBP", "image/webp")
    await sql("INSERT INTO pictures VALUES ('pics/u1/a.webp')")

    async def keys():
        return sorted([key for chunk in [c async for c in store.list("pics")] for key, _ in chunk])

    async def backdate():  # instead of sleeping through the grace again
        await sql("UPDATE unreferenced_objects SET seen_at = now() - interval '1 hour'")

    assert await job.run_once() == {"pics": 0}  # all younger than the grace: an upload not yet committed
    assert await sql("SELECT key FROM unreferenced_objects") == []
    await asyncio.sleep(GRACE + 0.05)
    assert await job.run_once() == {"pics": 0}  # b is noted, not deleted: the grace starts now
    assert [r[0] for r in await sql("SELECT key FROM unreferenced_objects")] == ["pics/u1/b.webp"]

    # the user goes back to b (a content-addressed key comes back with the same image); a is replaced
    await sql("UPDATE pictures SET key = 'pics/u1/b.webp'")
    await backdate()
    assert await job.run_once() == {"pics": 0}
    assert await keys() == ["pics/u1/a.webp", "pics/u1/b.webp"]
    await backdate()
    assert await job.run_once() == {"pics": 1}
    assert await keys() == ["pics/u1/b.webp"]
    assert await store.get("other/c.webp")  # outside the swept prefixes
    assert await sql("SELECT key FROM unreferenced_objects") == []

    # an upload holding the key through its commit wins over a deletion that is due
    await sql("DELETE FROM pictures")
    await sql("INSERT INTO unreferenced_objects VALUES ('pics/u1/b.webp', now() - interval '1 hour')")
    async with db.session() as upload:
        await lock_object_key(upload, "pics/u1/b.webp")
        sweeping = asyncio.create_task(job.run_once())
        await asyncio.sleep(0.3)
        assert not sweeping.done()
        await upload.execute(text("INSERT INTO pictures VALUES ('pics/u1/b.webp')"))
        await upload.commit()
    assert await asyncio.wait_for(sweeping, 10) == {"pics": 0}
    assert await keys() == ["pics/u1/b.webp"]


async def test_copy_keeps_the_type_and_a_missing_source_is_file_not_found(store):
    url = await store.put("a/x.webp", b"RIFF....WEBP", "image/webp")
    assert store.key_of(url) == "a/x.webp" and store.key_of("/elsewhere/a/x.webp") is None
    assert await store.copy("a/x.webp", "b/x.webp") == store.url_for("b/x.webp")
    assert await store.get("b/x.webp") == b"RIFF....WEBP"
    with pytest.raises(FileNotFoundError):
        await store.copy("a/missing.webp", "b/missing.webp")


async def test_a_copy_on_s3_is_served_with_its_type(object_store_env, seaweedfs):
    import httpx

    store = ObjectStore.from_settings(ServiceSettings(**{k.lower(): v for k, v in object_store_env.items()}))
    prefix = object_store_env["OBJECT_STORE_URL"].split("/", 3)[3]
    await store.put("a/x.webp", b"RIFF....WEBP", "image/webp")
    await store.copy("a/x.webp", "b/x.webp")
    async with httpx.AsyncClient() as http:
        served = await http.get(f"{seaweedfs.public_url}/{prefix}/b/x.webp")
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
