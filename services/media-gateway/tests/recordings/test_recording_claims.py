"""A remux that takes longer than the stale limit is not run a second time: the worker heartbeats
its job while ffmpeg runs, and only a job whose heartbeat stopped is claimed again. A job claimed
again anyway (its worker paused) remuxes into a file of its own, and only the current claim
publishes the VOD."""

import asyncio
import re
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from servicekit.db import Database
from servicekit.storage import ObjectStore

from media_gateway.recordings.service import RecordingWorker

KEY = "sk_" + secrets.token_urlsafe(24)
SLOW_SECONDS = 3.0


@pytest.fixture
def slow_ffmpeg(tmp_path, ffmpeg_tools) -> tuple[Path, Path]:
    """The real ffmpeg, started SLOW_SECONDS late; every remux it runs is logged (its output file)."""
    runs = tmp_path / "ffmpeg-runs.log"
    wrapper = tmp_path / "slow-ffmpeg"
    wrapper.write_text(f"""#!/bin/sh
last=""
for arg in "$@"; do last="$arg"; done
case "$last" in *.mp4*) echo "$last" >> {runs} ;; esac
sleep {SLOW_SECONDS}
exec {shutil.which("ffmpeg")} "$@"
""")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, runs


async def record(post, channels, media_settings, make_flv, clientid: str) -> str:
    channels.keys[KEY] = "chan-claims"
    location = (await post("publish", KEY, clientid=clientid)).headers["location"]
    session_id = re.search(r"/src/([0-9a-f]{32})_src$", location).group(1)
    flv = make_flv(media_settings.record_dir / f"{session_id}_src.flv", seconds=2)
    assert (await post("record_done", KEY, app="src", path=str(flv))).status_code == 202
    return session_id


def poster(client, rtmp_body):
    async def post(call, name, **kw):
        path = "publish" if call == "publish" else call
        return await client.post(f"/hooks/rtmp/{path}", content=rtmp_body(call, name, **kw),
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    return post


def playable(vod: Path) -> bool:
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                            str(vod)], capture_output=True, text=True)
    return probe.returncode == 0 and "video" in probe.stdout


async def stored_is_playable(stored, session_id: str, tmp_path) -> bool:
    """The VOD as the object store holds it (the local MP4 lives only until uploaded)."""
    copy = tmp_path / f"stored-{session_id}.mp4"
    copy.write_bytes(await stored(f"vod/{session_id}.mp4"))
    return playable(copy)


async def test_a_remux_longer_than_the_stale_limit_runs_once(channels, events, media_settings, make_client,
                                                              rtmp_body, make_flv, slow_ffmpeg, outbox_count,
                                                              stored, tmp_path):
    wrapper, runs = slow_ffmpeg
    settings = dict(ffmpeg_binary=str(wrapper), recording_stale_seconds=1.0, recording_heartbeat_seconds=0.2,
                    recording_poll_seconds=0.1)
    async with make_client(**settings) as client:
        # a second replica's worker polls the same table
        other = RecordingWorker(media_settings.model_copy(update=settings))
        db = Database(media_settings.database_url, pool_size=2)
        other_run = asyncio.create_task(other.run(db, ObjectStore.from_settings(media_settings)))
        try:
            session_id = await record(poster(client, rtmp_body), channels, media_settings, make_flv, "201")
            await events.wait_for("media.recording.ready", lambda d: d["ingestSessionId"] == session_id,
                                  timeout=30)
            await asyncio.sleep(1.5)  # time for a wrong reclaim to show
        finally:
            other.stop()
            await other_run
            await db.dispose()
    assert len(runs.read_text().splitlines()) == 1, runs.read_text()
    assert await outbox_count("media.recording.ready") == 1
    assert await stored_is_playable(stored, session_id, tmp_path)


async def test_a_job_claimed_again_remuxes_into_its_own_file_and_only_the_current_claim_publishes(
        channels, events, media_settings, make_client, rtmp_body, make_flv, slow_ffmpeg, outbox_count,
        stored, tmp_path):
    wrapper, runs = slow_ffmpeg
    settings = dict(ffmpeg_binary=str(wrapper), recording_stale_seconds=1.0, recording_heartbeat_seconds=0.2,
                    recording_poll_seconds=0.1)
    async with make_client(**settings) as client:
        # a worker that stopped heartbeating (paused, cut off) but whose ffmpeg goes on: its job
        # looks lost, and the app's worker claims it again while the first remux still runs
        paused = RecordingWorker(media_settings.model_copy(update={**settings, "recording_heartbeat_seconds": 60}))
        client.app.state.recordings.stop()  # let the paused worker claim first
        await asyncio.sleep(0.3)
        db = Database(media_settings.database_url, pool_size=2)
        try:
            session_id = await record(poster(client, rtmp_body), channels, media_settings, make_flv, "301")
            store = ObjectStore.from_settings(media_settings)
            first = asyncio.create_task(paused.process_next(db, store))
            await asyncio.sleep(1.5)  # stale now
            second = RecordingWorker(media_settings.model_copy(update=settings))
            assert await second.process_next(db, store)
            await first
            await events.wait_for("media.recording.ready", lambda d: d["ingestSessionId"] == session_id,
                                  timeout=30)
        finally:
            await db.dispose()
    outputs = runs.read_text().splitlines()
    assert len(outputs) == 2 and outputs[0] != outputs[1], outputs
    assert await outbox_count("media.recording.ready") == 1
    assert await stored_is_playable(stored, session_id, tmp_path)
    # no temporary file and no claim's local MP4 left behind
    assert not list(media_settings.vod_dir.glob(".*partial*"))
    assert not list(media_settings.vod_dir.glob(f"{session_id}*"))
