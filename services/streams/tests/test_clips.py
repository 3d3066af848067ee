"""Clips (API.md, Extensions/Video): validation, the rate limit, who may delete, and a real cut of
an archived stream's recording (ffmpeg, SeaweedFS). The live window is cut in
tests/e2e/test_clips_through_gateway.py, where a real origin serves it."""

import asyncio
import json
import subprocess
import uuid

import httpx
import pytest
from sqlalchemy import text

from contracts.events.channels import ChannelModerator


@pytest.fixture
def recording(streams_app, streams_settings, seaweedfs, tmp_path):
    """A real 8 s recording in the store; returns its anonymous URL (what media-gateway hands out)."""

    async def _make() -> str:
        path = tmp_path / "rec.mp4"
        await asyncio.to_thread(subprocess.run, ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "8",
                        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-movflags", "+faststart", str(path)], check=True, timeout=60)
        key = f"vod/{uuid.uuid4().hex}.mp4"
        await streams_app.state.runtime.store.put_file(key, path, "video/mp4")
        prefix = streams_settings.object_store_url.removeprefix("s3://").partition("/")[2]
        return f"{seaweedfs.public_url}/{prefix}/{key}"

    return _make


@pytest.fixture
def archived(make_user, make_channel, ingest, live_stream_of, wait_status, recording):
    """(owner, channel id, archived stream) whose VOD is a real 8 s recording."""

    async def _make():
        owner = make_user()
        channel_id = await make_channel(owner)
        feed = ingest(channel_id)
        session_id = await feed.connect()
        stream = await live_stream_of(channel_id)
        await feed.disconnect(session_id)
        await feed.recording(session_id, vod_url=await recording(), duration=8.0)
        return owner, channel_id, await wait_status(stream["id"], "ARCHIVED")

    return _make


async def clip_count(db) -> int:
    async with db() as session:
        return (await session.exec(text("SELECT count(*) FROM clips"))).scalar_one()


def ffprobe(data: bytes, tmp_path) -> dict:
    path = tmp_path / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)


async def test_an_archived_stream_is_clipped_from_start_seconds_stored_and_announced(
        client, archived, make_user, eventually, events, tmp_path, seaweedfs, streams_settings):
    _, channel_id, stream = await archived()
    viewer = make_user()
    r = await client.post("/api/clips", headers=viewer.headers,
                          json={"streamId": stream["id"], "startSeconds": 2, "durationSeconds": 5, "title": " Wow "})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "processing"
    clip_id = r.json()["id"]

    async def fetch():
        return (await client.get(f"/api/clips/{clip_id}")).json()

    clip = await eventually(fetch, lambda c: c["status"] != "processing", timeout=30, what="the clip cut")
    assert clip["status"] == "ready", clip
    assert clip.keys() == {"id", "channelId", "streamId", "title", "status", "url", "thumbnailUrl",
                           "durationSeconds", "createdAt", "creator"}
    assert (clip["channelId"], clip["streamId"], clip["title"], clip["creator"], clip["durationSeconds"]) == \
        (channel_id, stream["id"], "Wow", viewer.id, 5)
    prefix = streams_settings.object_store_url.removeprefix("s3://").partition("/")[2]
    base = f"{seaweedfs.public_url}/{prefix}"
    assert clip["url"] == f"/media/clips/{clip_id}.mp4" and clip["thumbnailUrl"] == f"/media/clips/{clip_id}.jpg"
    async with httpx.AsyncClient() as http:
        video = await http.get(f"{base}/clips/{clip_id}.mp4")
        still = await http.get(f"{base}/clips/{clip_id}.jpg")
    assert video.status_code == 200 and still.status_code == 200 and still.content[:2] == b"\xff\xd8"
    probe = ffprobe(video.content, tmp_path)
    assert {s["codec_type"] for s in probe["streams"]} == {"video", "audio"}
    # copied, not re-encoded: the cut falls on key frames (1 s apart here)
    assert 4.0 <= float(probe["format"]["duration"]) <= 7.0, probe

    [created] = [p for p in await events.wait_for(lambda ps: any(p.subject == "clip.created" for p in ps),
                                                  what="clip.created") if p.subject == "clip.created"]
    assert created.event.data.id == clip_id and created.event.data.url == clip["url"]

    listed = (await client.get(f"/api/channels/{channel_id}/clips")).json()
    assert [c["id"] for c in listed["items"]] == [clip_id]


async def test_bad_clips_are_refused_and_nothing_is_stored(client, archived, make_user, make_channel, ingest,
                                                           live_stream_of, assert_problem, db):
    _, _, stream = await archived()
    viewer = make_user()
    sid = stream["id"]
    for body in ({"streamId": sid, "durationSeconds": 61}, {"streamId": sid, "durationSeconds": 4},
                 {"streamId": sid, "durationSeconds": "ten"}, {"streamId": sid},
                 {"streamId": sid, "durationSeconds": 10, "startSeconds": -1}):
        assert_problem(await client.post("/api/clips", headers=viewer.headers, json=body), 422)
    # startSeconds outside the archived stream (8 s long)
    problem = assert_problem(await client.post("/api/clips", headers=viewer.headers,
                                               json={"streamId": sid, "durationSeconds": 5, "startSeconds": 8}), 422)
    assert "length (8 s)" in problem["detail"]
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        assert_problem(await client.post("/api/clips", headers=viewer.headers,
                                         json={"streamId": unknown, "durationSeconds": 10}), 404)
    # signed-in viewers only
    assert_problem(await client.post("/api/clips", json={"streamId": sid, "durationSeconds": 10}), 401)
    # a prepared stream has nothing to clip
    owner = make_user()
    channel_id = await make_channel(owner)
    prepared = (await client.post("/api/streams", headers=owner.headers,
                                  json={"channelId": channel_id, "title": "Soon"})).json()
    assert_problem(await client.post("/api/clips", headers=viewer.headers,
                                     json={"streamId": prepared["id"], "durationSeconds": 10}), 409)
    # a live clip is the last durationSeconds: no startSeconds
    await ingest(channel_id).connect()
    live = await live_stream_of(channel_id)
    assert_problem(await client.post("/api/clips", headers=viewer.headers,
                                     json={"streamId": live["id"], "durationSeconds": 10, "startSeconds": 3}), 422)
    assert await clip_count(db) == 0
    assert_problem(await client.get(f"/api/clips/{uuid.uuid4()}"), 404)
    assert_problem(await client.get("/api/clips/nope"), 404)
    assert_problem(await client.get(f"/api/channels/{uuid.uuid4()}/clips"), 404)


@pytest.mark.settings(clip_rate_limit=2, clip_rate_window_seconds=600, clip_poll_seconds=600)
async def test_clips_are_rate_limited_per_user(client, archived, make_user, assert_problem, db):
    _, _, stream = await archived()
    alice, bob = make_user(), make_user()
    body = {"streamId": stream["id"], "durationSeconds": 5}
    for _ in range(2):
        assert (await client.post("/api/clips", headers=alice.headers, json=body)).status_code == 202
    refused = await client.post("/api/clips", headers=alice.headers, json=body)
    assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) > 0
    # another user has a budget of their own
    assert (await client.post("/api/clips", headers=bob.headers, json=body)).status_code == 202
    assert await clip_count(db) == 3


@pytest.mark.settings(clip_poll_seconds=600)
async def test_a_clip_is_deleted_by_its_creator_the_owner_or_a_moderator_only(
        client, archived, make_user, assert_problem, publish, settled, events):
    owner, channel_id, stream = await archived()
    creator, moderator, stranger = make_user(), make_user(), make_user()
    await publish("channel.moderator_added", ChannelModerator(channel_id=channel_id, user_id=moderator.id),
                  source="channels")
    await settled("streams-moderators")
    body = {"streamId": stream["id"], "durationSeconds": 5}
    ids = [(await client.post("/api/clips", headers=creator.headers, json=body)).json()["id"] for _ in range(3)]
    for clip_id in ids:
        assert_problem(await client.delete(f"/api/clips/{clip_id}", headers=stranger.headers), 403)
        assert_problem(await client.delete(f"/api/clips/{clip_id}"), 401)
    for clip_id, who in zip(ids, (creator, owner, moderator), strict=True):
        assert (await client.delete(f"/api/clips/{clip_id}", headers=who.headers)).status_code == 204
        assert_problem(await client.get(f"/api/clips/{clip_id}"), 404)
    assert_problem(await client.delete(f"/api/clips/{ids[0]}", headers=creator.headers), 404)
    published = await events.wait_for(lambda ps: sum(p.subject == "clip.deleted" for p in ps) == 3,
                                      what="three clip.deleted")
    assert {p.event.data.id for p in published if p.subject == "clip.deleted"} == set(ids)
    # a removed moderator loses the power
    await publish("channel.moderator_removed", ChannelModerator(channel_id=channel_id, user_id=moderator.id),
                  source="channels")
    await settled("streams-moderators")
    clip_id = (await client.post("/api/clips", headers=creator.headers, json=body)).json()["id"]
    assert_problem(await client.delete(f"/api/clips/{clip_id}", headers=moderator.headers), 403)


async def test_an_idle_cutter_asks_nothing_between_notifications_and_wakes_on_one(streams_app, db, eventually):
    """clip_poll_seconds is 0.2 here: while its LISTEN is up the cutter does not poll at that rate."""
    from sqlalchemy import event

    claims = []

    def on_execute(conn, cursor, statement, *args):
        if "FROM clips" in statement and "SKIP LOCKED" in statement:
            claims.append(statement)

    engine = streams_app.state.runtime.db.engine.sync_engine
    cutter = streams_app.state.runtime.cutter
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        await eventually(lambda: _listening(cutter), lambda up: up, timeout=5, what="the cutter LISTENing")
        await asyncio.sleep(0.3)
        before = len(claims)
        await asyncio.sleep(1.0)  # 5 polls of 0.2 s
        assert len(claims) == before, "an idle cutter with LISTEN up polled"
        async with db() as session:
            await session.exec(text("NOTIFY clips_pending"))
            await session.commit()
        await eventually(lambda: _count(claims), lambda n: n > before, timeout=1, what="a claim after NOTIFY")
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


async def _listening(cutter) -> bool:
    return cutter.listener is not None and cutter.listener.listening


async def _count(items: list) -> int:
    return len(items)
