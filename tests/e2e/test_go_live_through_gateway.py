"""Go live: ffmpeg publishes with a channel's key to the nginx-rtmp ingest; the media gateway
authorizes it through channels over NATS, renames it to an opaque id and announces
`media.ingest.connected`; the master playlist and a segment of every rendition (fragmented MP4
after its init section) play through the gateway; the key appears in no HLS path and no log."""

import asyncio
import re
import shutil
import subprocess
import time
import uuid

import httpx
import nats
import pytest

from contracts.envelope import parse_event

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]


async def _next_connected(nats_url: str, channel_id: str, timeout: float) -> dict:
    """The channel's media.ingest.connected (the stream also holds other tests' events)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe("media.ingest.connected", ordered_consumer=True)
        deadline = time.monotonic() + timeout
        while True:
            msg = await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))
            data = parse_event(msg.data).data.model_dump(by_alias=True)
            if data["channelId"] == channel_id:
                return data
    finally:
        await nc.close()


def _wait_ok(client: httpx.Client, url: str, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(url)
        if r.status_code == 200 and r.content:
            return r
        time.sleep(0.25)
    raise AssertionError(f"{url} not fetchable within {timeout}s (last {r.status_code})")


def test_publish_with_key_plays_through_gateway(gateway, stack):
    name = f"live_{uuid.uuid4().hex[:8]}"
    r = gateway.post("/api/auth/register", json={"email": f"{name}@example.com", "password": "s3cret-passw0rd",
                                                 "username": name})
    auth = {"Authorization": f"Bearer {r.json()['accessToken']}"}
    channel = gateway.post("/api/channels", json={"name": f"Live {name}"}, headers=auth).json()
    key = gateway.get(f"/api/channels/{channel['id']}/stream-key", headers=auth).json()["streamKey"]

    rtmp = f"rtmp://127.0.0.1:{stack.config.rtmp_port}/live/{key}"
    encoder = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440", "-t", "20", "-c:v", "libx264", "-preset", "ultrafast",
         "-tune", "zerolatency", "-g", "30", "-c:a", "aac", "-f", "flv", rtmp],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        connected = asyncio.run(_next_connected(stack.nats.url, channel["id"], 20))
        assert connected["channelId"] == channel["id"]
        hls_url = connected["hlsUrl"]
        assert key not in hls_url
        master = _wait_ok(gateway, hls_url, 30)
        assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        variants = [line for line in master.text.splitlines() if line and not line.startswith("#")]
        assert len(variants) >= 2, master.text  # source plus at least one lower rendition
        base = hls_url.rsplit("/", 1)[0]
        for variant in variants:
            url = variant if variant.startswith("/") else f"{base}/{variant}"
            playlist = _wait_ok(gateway, url, 30)
            segments = [x for x in playlist.text.splitlines() if x and not x.startswith("#")]
            deadline = time.monotonic() + 20
            while not segments and time.monotonic() < deadline:
                time.sleep(0.5)
                playlist = gateway.get(url)
                segments = [x for x in playlist.text.splitlines() if x and not x.startswith("#")]
            assert segments, playlist.text
            seg_url = segments[0] if segments[0].startswith("/") else f"{url.rsplit('/', 1)[0]}/{segments[0]}"
            segment = _wait_ok(gateway, seg_url, 10)
            # fragmented MP4 (LL-HLS): a segment plays after its init section (EXT-X-MAP)
            init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist.text)[1]
            init = _wait_ok(gateway, f"{url.rsplit('/', 1)[0]}/{init_uri}", 10)
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                                    "-"], input=init.content + segment.content, capture_output=True, timeout=20)
            assert b"video" in probe.stdout, probe.stderr
    finally:
        encoder.kill()
        encoder.wait(10)

    logs = stack.config.data_dir / "logs"
    for path in [*logs.glob("*.log"), *(stack.config.data_dir / "ingest" / "logs").glob("*.log"),
                 *(stack.config.data_dir / "nginx" / "logs").glob("*.log")]:
        assert key not in path.read_text(errors="replace"), f"stream key leaked into {path}"
    assert not any(key in p.name for p in (stack.config.data_dir / "hls").rglob("*"))


def test_wrong_key_is_refused(stack):
    rtmp = f"rtmp://127.0.0.1:{stack.config.rtmp_port}/live/live_not-a-real-key-{uuid.uuid4().hex}"
    start = time.monotonic()
    result = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-t", "15",
         "-c:v", "libx264", "-preset", "ultrafast", "-f", "flv", rtmp],
        capture_output=True, timeout=30)
    assert result.returncode != 0
    assert time.monotonic() - start < 10


def test_go_live_makes_the_stream_live_in_the_api(gateway, stack):
    """Encoder connects -> streams marks the channel's session LIVE -> channels shows isLive."""
    name = f"gl_{uuid.uuid4().hex[:8]}"
    r = gateway.post("/api/auth/register", json={"email": f"{name}@example.com", "password": "s3cret-passw0rd",
                                                 "username": name})
    auth = {"Authorization": f"Bearer {r.json()['accessToken']}"}
    channel = gateway.post("/api/channels", json={"name": f"Go {name}"}, headers=auth).json()
    key = gateway.get(f"/api/channels/{channel['id']}/stream-key", headers=auth).json()["streamKey"]
    # the streams service learns about the channel from channel.created before Go live
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = gateway.post(f"/api/streams/{channel['id']}/start", json={"title": "First stream"}, headers=auth)
        if r.status_code == 200:
            break
        time.sleep(0.3)
    assert r.status_code == 200, r.text
    stream_id = r.json()["id"]

    encoder = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
         "-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-f", "flv",
         f"rtmp://127.0.0.1:{stack.config.rtmp_port}/live/{key}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        stream = {}
        while time.monotonic() < deadline:
            stream = gateway.get(f"/api/streams/{stream_id}").json()
            if stream.get("status") == "LIVE":
                break
            time.sleep(0.25)
        assert stream["status"] == "LIVE", stream
        assert stream["hlsUrl"] and key not in stream["hlsUrl"]
        assert gateway.get(f"/api/streams/{stream_id}/hls").json()["url"] == stream["hlsUrl"]
        deadline = time.monotonic() + 15
        page = {}
        while time.monotonic() < deadline:
            page = gateway.get(f"/api/channels/{channel['slug']}").json()
            if page.get("isLive"):
                break
            time.sleep(0.25)
        assert page["isLive"] is True and page["liveStreamId"] == stream_id
        listed = gateway.get(f"/api/channels/{channel['id']}/streams").json()
        assert stream_id in [s["id"] for s in listed["items"]]
    finally:
        encoder.kill()
        encoder.wait(10)
