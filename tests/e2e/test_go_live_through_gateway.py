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

import pytest

from .helpers import Creator, assert_never_logged, connected_event, encoder, fetched, rtmp_url, stop, until

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]


def _uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def test_publish_with_key_plays_through_gateway(gateway, stack):
    creator = Creator(gateway, "live")
    channel, key = creator.channel, creator.keys()["streamKey"]

    publisher = encoder(rtmp_url(stack, key), seconds=20, size="640x360", rate=30)
    try:
        connected = asyncio.run(connected_event(stack.nats.url, channel["id"], 20)).data.model_dump(by_alias=True)
        assert connected["channelId"] == channel["id"]
        hls_url = connected["hlsUrl"]
        assert key not in hls_url
        master = fetched(gateway, hls_url, 30)
        assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        variants = _uris(master.text)
        assert len(variants) >= 2, master.text  # source plus at least one lower rendition
        base = hls_url.rsplit("/", 1)[0]
        for variant in variants:
            url = variant if variant.startswith("/") else f"{base}/{variant}"
            fetched(gateway, url, 30)
            playlist = until(f"a segment listed in {url}", lambda u=url: gateway.get(u),
                             lambda p: p.status_code == 200 and _uris(p.text), timeout=20, every=0.5)
            segments = _uris(playlist.text)
            seg_url = segments[0] if segments[0].startswith("/") else f"{url.rsplit('/', 1)[0]}/{segments[0]}"
            segment = fetched(gateway, seg_url, 10)
            # fragmented MP4 (LL-HLS): a segment plays after its init section (EXT-X-MAP)
            init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist.text)[1]
            init = fetched(gateway, f"{url.rsplit('/', 1)[0]}/{init_uri}", 10)
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                                    "-"], input=init.content + segment.content, capture_output=True, timeout=20)
            assert b"video" in probe.stdout, probe.stderr
    finally:
        stop(publisher)

    assert_never_logged(stack, [key])
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
    creator = Creator(gateway, "gl")
    channel, key = creator.channel, creator.keys()["streamKey"]
    stream_id = creator.go_live("First stream")

    publisher = encoder(rtmp_url(stack, key), seconds=20, size="640x360", rate=30, audio=False)
    try:
        stream = creator.wait_live(stream_id)
        assert stream["hlsUrl"] and key not in stream["hlsUrl"]
        assert gateway.get(f"/api/streams/{stream_id}/hls").json()["url"] == stream["hlsUrl"]
        page = until("the channel page showing isLive", lambda: gateway.get(f"/api/channels/{channel['slug']}").json(),
                     lambda page: page.get("isLive"), every=0.25)
        assert page["isLive"] is True and page["liveStreamId"] == stream_id
        listed = gateway.get(f"/api/channels/{channel['id']}/streams").json()
        assert stream_id in [s["id"] for s in listed["items"]]
    finally:
        stop(publisher)
