"""on_record_done -> a VOD ffprobe can read -> media.recording.ready."""

import asyncio
import re
import secrets
import subprocess
import time

KEY = "sk_" + secrets.token_urlsafe(24)


async def start_session(rtmp, channels, clientid="71") -> str:
    channels.keys[KEY] = "chan-rec"
    location = (await rtmp("publish", KEY, clientid=clientid)).headers["location"]
    return re.search(r"/src/([0-9a-f]{32})_src$", location).group(1)


async def test_recording_becomes_a_vod(rtmp, channels, events, media_settings, make_flv, stored):
    session_id = await start_session(rtmp, channels)
    flv = make_flv(media_settings.record_dir / f"{session_id}_src.flv", seconds=2)

    # nginx-rtmp posts the publishing connection's name (here the key, as nginx-rtmp does) and the path
    r = await rtmp("record_done", KEY, clientid="72", app="src", path=str(flv), recorder="")
    assert r.status_code == 202
    # answered before the remux (it happens in the background): nginx-rtmp's hook must not wait on it
    assert r.json() == {"sessionId": session_id, "status": "pending"}

    event = await events.wait_for("media.recording.ready", lambda d: d["ingestSessionId"] == session_id,
                                  timeout=30)
    data = event["data"]
    assert data["channelId"] == "chan-rec"
    assert data["vodUrl"] == f"/vod/{session_id}.mp4"
    assert 1.5 <= data["durationSeconds"] <= 2.5

    vod = await stored(f"vod/{session_id}.mp4")  # in the object store (S3), not on this disk
    probe = await asyncio.to_thread(
        subprocess.run, ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", "-"],
        input=vod, capture_output=True, check=True)
    assert b"video" in probe.stdout and b"audio" in probe.stdout
    assert not flv.exists()  # the raw recording is removed once the VOD exists
    assert not list(media_settings.vod_dir.iterdir())  # and so is the local MP4 once uploaded
    assert not any(KEY.encode() in raw for raw in events.raw)


async def test_record_done_twice_makes_one_vod(rtmp, channels, events, media_settings, make_flv, outbox_count):
    session_id = await start_session(rtmp, channels)
    flv = make_flv(media_settings.record_dir / f"{session_id}_src.flv", seconds=1)
    assert (await rtmp("record_done", KEY, app="src", path=str(flv))).status_code == 202
    assert (await rtmp("record_done", KEY, app="src", path=str(flv))).status_code == 202
    await events.wait_for("media.recording.ready", lambda d: d["ingestSessionId"] == session_id, timeout=30)
    await asyncio.sleep(0.5)
    assert await outbox_count("media.recording.ready") == 1


async def test_record_done_refuses_paths_that_are_not_our_recordings(rtmp, channels, media_settings, tmp_path,
                                                                      make_flv):
    session_id = await start_session(rtmp, channels)
    outside = make_flv(tmp_path / f"{session_id}_src.flv", seconds=1)
    cases = [
        str(outside),  # outside the record root
        str(media_settings.record_dir / ".." / outside.name),  # climbing out of it
        f"{session_id}_src.flv",  # relative
        str(media_settings.record_dir / "0123456789abcdef0123456789abcdef_src.flv"),  # no such file
        "",
    ]
    unknown = make_flv(media_settings.record_dir / "0123456789abcdef0123456789abcdef_src.flv", seconds=1)
    cases.append(str(unknown))  # a file, but no such session
    for path in cases:
        r = await rtmp("record_done", KEY, app="src", path=path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_unreadable_recording_fails_without_an_event(channels, media_settings, make_client, rtmp_body,
                                                           outbox_count):
    from servicekit.db import Database

    from media_gateway.recordings.models import Recording

    async with make_client(recording_max_attempts=1) as client:
        async def post(call, name, **kw):
            path = "publish" if call == "publish" else call
            return await client.post(f"/hooks/rtmp/{path}", content=rtmp_body(call, name, **kw),
                                     headers={"content-type": "application/x-www-form-urlencoded"})

        session_id = await start_session(post, channels)
        broken = media_settings.record_dir / f"{session_id}_src.flv"
        broken.write_bytes(b"FLV\x01 this is not a recording")
        assert (await post("record_done", KEY, app="src", path=str(broken))).status_code == 202
        db = Database(media_settings.database_url, pool_size=1)
        try:
            for _ in range(100):
                async with db.session() as session:
                    row = await session.get(Recording, session_id)
                if row.status == "failed":
                    break
                await asyncio.sleep(0.1)
            assert row.status == "failed" and row.error
        finally:
            await db.dispose()
    assert await outbox_count("media.recording.ready") == 0


async def test_recording_whose_callback_was_lost_is_still_made(channels, events, media_settings, make_client,
                                                               rtmp_body, make_flv):
    import os

    async with make_client(recording_sweep_seconds=0.2, recording_orphan_seconds=60) as client:
        async def post(call, name, **kw):
            path = "publish" if call == "publish" else call
            return await client.post(f"/hooks/rtmp/{path}", content=rtmp_body(call, name, **kw),
                                     headers={"content-type": "application/x-www-form-urlencoded"})

        session_id = await start_session(post, channels, clientid="111")
        live = await start_session(post, channels, clientid="112")  # supersedes: the first one ended
        flv = make_flv(media_settings.record_dir / f"{session_id}_src.flv", seconds=1)
        fresh = make_flv(media_settings.record_dir / f"{live}_src.flv", seconds=1)
        old = time.time() - 120
        os.utime(flv, (old, old))  # untouched for two minutes: the broadcast is over
        os.utime(fresh, (old, old))  # but this session is still live: not a finished recording
        event = await events.wait_for("media.recording.ready", lambda d: d["ingestSessionId"] == session_id,
                                      timeout=30)
        assert event["data"]["vodUrl"] == f"/vod/{session_id}.mp4"
        await asyncio.sleep(0.5)
        assert fresh.exists()
        assert not [e for e in events.of_type("media.recording.ready") if e["data"]["ingestSessionId"] == live]
