"""Clips through the gateway with real media: ffmpeg publishes to the nginx-rtmp ingest, a viewer
clips the live window (the LL-HLS origin's recent segments), the stream ends, and a clip of the
archived recording is cut from startSeconds. ffprobe checks both (roughly the asked length, video
and audio) and ffmpeg decodes them. Every clips route is called here (route coverage); bad clips
are refused with problem+json and store nothing."""

import shutil
import subprocess
import time
import uuid

import httpx
import pytest
from servicekit.testing import poll

from .helpers import (create_channel, encoder, go_live, problem, register, rtmp_url, segments_in_first_variant, stop,
                      stream_key)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                                  reason="needs ffmpeg and ffprobe")]


def ready_clip(gateway: httpx.Client, clip_id: str) -> dict:
    clip = poll(f"clip {clip_id} cut", lambda: (c := gateway.get(f"/api/clips/{clip_id}").json())["status"] != "processing"
                and c, timeout=60, every=0.5)
    assert clip["status"] == "ready", clip
    return clip


def probe_and_decode(gateway: httpx.Client, url: str, tmp_path) -> float:
    r = gateway.get(url)
    assert r.status_code == 200, r.text[:200]
    assert r.headers["content-type"].startswith("video/mp4"), r.headers
    path = tmp_path / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(r.content)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
                            "-of", "default=nw=1", str(path)], capture_output=True, text=True, timeout=30, check=False)
    assert probe.returncode == 0, probe.stderr
    assert "codec_type=video" in probe.stdout and "codec_type=audio" in probe.stdout, probe.stdout
    decode = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "null", "-"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert decode.returncode == 0 and decode.stderr.strip() == "", decode.stderr
    return float(next(line.split("=", 1)[1] for line in probe.stdout.splitlines() if line.startswith("duration=")))


def test_live_and_archived_clips_are_cut_played_listed_and_deleted(gateway, stack, tmp_path):
    owner = register(gateway, "clipper_owner")["auth"]
    channel = create_channel(gateway, owner, f"Clips {uuid.uuid4().hex[:6]}")
    key = stream_key(gateway, channel["id"], owner)
    stream_id = go_live(gateway, channel["id"], owner, "Clip me", timeout=30)["id"]
    viewer, stranger = register(gateway, "clipper")["auth"], register(gateway, "stranger")["auth"]
    publisher = encoder(rtmp_url(stack, key), seconds=60)
    try:
        live = poll("LIVE", lambda: (s := gateway.get(f"/api/streams/{stream_id}").json())["status"] == "LIVE" and s)
        # the origin keeps the last few 1 s segments: wait until a 5 s clip is in the window
        poll("6 segments in the live window", lambda: segments_in_first_variant(gateway, live["hlsUrl"]) >= 6,
             timeout=60, every=0.5)

        # bad clips: problem+json, nothing stored
        for body, status in (({"streamId": stream_id, "durationSeconds": 61}, 422),
                             ({"streamId": stream_id, "durationSeconds": 4}, 422),
                             ({"streamId": stream_id, "durationSeconds": 5, "startSeconds": 1}, 422),
                             ({"streamId": str(uuid.uuid4()), "durationSeconds": 5}, 404)):
            problem(gateway.post("/api/clips", json=body, headers=viewer), status)
        problem(gateway.post("/api/clips", json={"streamId": stream_id, "durationSeconds": 5}), 401)

        r = gateway.post("/api/clips", json={"streamId": stream_id, "durationSeconds": 5, "title": "Live moment"},
                         headers=viewer)
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "processing"
        live_clip = ready_clip(gateway, r.json()["id"])
        assert live_clip["channelId"] == channel["id"] and live_clip["streamId"] == stream_id
        assert 3.0 <= probe_and_decode(gateway, live_clip["url"], tmp_path) <= 9.0
        still = gateway.get(live_clip["thumbnailUrl"])
        assert still.status_code == 200 and still.content[:2] == b"\xff\xd8"

        time.sleep(2)  # a little more on air, so the recording is longer than the archived clip
        assert gateway.post(f"/api/streams/{stream_id}/end", headers=owner).status_code == 202
        publisher.wait(20)
    finally:
        stop(publisher)

    archived = poll("ARCHIVED with a VOD", lambda: (s := gateway.get(f"/api/streams/{stream_id}").json())["status"]
                    == "ARCHIVED" and s["vodUrl"] and s, timeout=90, every=0.5)
    refused = problem(gateway.post("/api/clips", json={"streamId": stream_id, "durationSeconds": 5,
                                                       "startSeconds": 3600}, headers=viewer), 422)
    assert "startSeconds" in refused["detail"]
    r = gateway.post("/api/clips", json={"streamId": stream_id, "durationSeconds": 5, "startSeconds": 1},
                     headers=viewer)
    assert r.status_code == 202, r.text
    vod_clip = ready_clip(gateway, r.json()["id"])
    assert 3.0 <= probe_and_decode(gateway, vod_clip["url"], tmp_path) <= 9.0
    assert archived["vodUrl"] != vod_clip["url"]

    listed = gateway.get(f"/api/channels/{channel['id']}/clips")
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["items"]] == [vod_clip["id"], live_clip["id"]]

    problem(gateway.delete(f"/api/clips/{live_clip['id']}", headers=stranger), 403)
    assert gateway.delete(f"/api/clips/{live_clip['id']}", headers=viewer).status_code == 204
    assert gateway.delete(f"/api/clips/{vod_clip['id']}", headers=owner).status_code == 204
    problem(gateway.get(f"/api/clips/{live_clip['id']}"), 404)
    assert gateway.get(f"/api/channels/{channel['id']}/clips").json()["items"] == []
    # the files went with the clips
    poll("the clip file gone", lambda: gateway.get(live_clip["url"]).status_code == 404, timeout=15)
