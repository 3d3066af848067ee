"""The LL-HLS origin over HTTP (the real app, in-process), fed real ffmpeg fragmented MP4 one part at
a time, as the transcoder feeds it: blocking reloads and the next part are held until the part
exists, a stream's end answers whoever waits, and bad requests are 4xx problems."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

import pytest
from media_gateway.llhls.fmp4 import boxes

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

SESSION = "0123456789abcdef0123456789abcdef"
SOURCE = f"{SESSION}_src"


@pytest.fixture(scope="module")
def pieces() -> list[bytes]:
    """ftyp+moov, then one moof+mdat per third of a second (a key frame every second), 3 s."""
    data = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i",
         "sine=sample_rate=44100", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
         "-keyint_min", "30", "-sc_threshold", "0", "-c:a", "aac", "-f", "mp4",
         "-movflags", "empty_moov+default_base_moof+frag_keyframe", "-frag_duration", "330000", "pipe:1"],
        capture_output=True, check=True).stdout
    out, head = [], b""
    for kind, payload, end in boxes(data):
        box = data[payload - 8:end]  # no box here needs a 64-bit size
        if kind in ("ftyp", "moof"):
            head = box
        elif kind in ("moov", "mdat"):
            out.append(head + box)
    return out


@pytest.fixture
async def live(client, pieces):
    """The session opened as on_publish opens it, its init section and first four parts fed."""
    origin = client.app.state.origin
    origin.open(SESSION)
    origin.restart(SESSION)
    for piece in pieces[:5]:
        await origin.feed(SESSION, SOURCE, piece)
    return origin


def listed(text: str) -> list[tuple[int, int]]:
    return [(int(m), int(p)) for m, p in re.findall(r'#EXT-X-PART:.*URI="part-(\d+)\.(\d+)\.m4s"', text)]


async def test_master_and_media_playlists(client, live):
    master = await client.get(f"/hls/ingest-0/{SESSION}/index.m3u8")
    assert master.status_code == 200 and master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert re.findall(r"^/hls/\S+$", master.text, re.MULTILINE) == [
        f"/hls/ingest-0/{SOURCE}/index.m3u8", f"/hls/ingest-0/{SESSION}_src_480p/index.m3u8"]
    playlist = await client.get(f"/hls/ingest-0/{SOURCE}/index.m3u8")
    assert listed(playlist.text) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-1.1.m4s"' in playlist.text
    assert playlist.headers["access-control-allow-origin"] == "*" and playlist.headers["x-origin-fetch"] == "1"
    again = await client.get(f"/hls/ingest-0/{SOURCE}/index.m3u8")
    assert again.headers["x-origin-fetch"] == "2"
    init = await client.get(f"/hls/ingest-0/{SOURCE}/init-0.mp4")
    segment = await client.get(f"/hls/ingest-0/{SOURCE}/seg-0.m4s")
    assert init.status_code == segment.status_code == 200 and segment.headers["content-type"] == "video/mp4"
    assert segment.content[4:8] == b"moof" and "immutable" in segment.headers["cache-control"]


async def test_a_blocking_reload_and_the_next_part_are_held_until_the_part_exists(client, live, pieces):
    reload = asyncio.create_task(client.get(f"/hls/ingest-0/{SOURCE}/index.m3u8", params={"_HLS_msn": 1, "_HLS_part": 1}))
    part = asyncio.create_task(client.get(f"/hls/ingest-0/{SOURCE}/part-1.1.m4s"))
    await asyncio.sleep(0.3)
    assert not reload.done() and not part.done()
    await live.feed(SESSION, SOURCE, pieces[5])
    reload, part = await asyncio.wait_for(reload, 5), await asyncio.wait_for(part, 5)
    assert reload.status_code == 200 and listed(reload.text)[-1] == (1, 1)
    assert part.status_code == 200 and part.content == pieces[5]


async def test_the_end_of_the_stream_answers_waiting_reloads_with_endlist(client, live):
    reload = asyncio.create_task(client.get(f"/hls/ingest-0/{SOURCE}/index.m3u8", params={"_HLS_msn": 1, "_HLS_part": 2}))
    await asyncio.sleep(0.2)
    assert not reload.done()
    await live.end(SESSION)
    r = await asyncio.wait_for(reload, 5)
    assert r.status_code == 200 and r.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert "#EXT-X-PRELOAD-HINT" not in r.text


async def test_a_part_that_does_not_come_in_time_is_503(client, live):
    r = await client.get(f"/hls/ingest-0/{SOURCE}/index.m3u8", params={"_HLS_msn": 1, "_HLS_part": 1})
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path,params,status", [
    (f"/hls/ingest-0/{SOURCE}/index.m3u8", {"_HLS_msn": "soon"}, 400),
    (f"/hls/ingest-0/{SOURCE}/index.m3u8", {"_HLS_msn": "-1"}, 400),
    (f"/hls/ingest-0/{SOURCE}/index.m3u8", {"_HLS_msn": "9" * 12}, 400),
    (f"/hls/ingest-0/{SOURCE}/index.m3u8", {"_HLS_part": "1"}, 400),
    (f"/hls/ingest-0/{SOURCE}/index.m3u8", {"_HLS_msn": "4", "_HLS_part": "0"}, 400),  # three segments ahead
    ("/hls/ingest-0/ffffffffffffffffffffffffffffffff/index.m3u8", {}, 404),
    ("/hls/ingest-0/ffffffffffffffffffffffffffffffff_src/index.m3u8", {}, 404),
    (f"/hls/ingest-0/{SESSION}_src_9000p/index.m3u8", {}, 404),
    (f"/hls/ingest-0/{SOURCE}/part-0.7.m4s", {}, 404),
    (f"/hls/ingest-0/{SOURCE}/seg-7.m4s", {}, 404),
    (f"/hls/ingest-0/{SOURCE}/init-3.mp4", {}, 404),
    (f"/hls/ingest-0/{SOURCE}/..%2F..%2Fetc%2Fpasswd", {}, 404),
    (f"/hls/ingest-0/{SOURCE}/index.html", {}, 404),
    # a live session, asked of a node that does not hold it (the gateway routed wrongly)
    (f"/hls/ingest-1/{SOURCE}/index.m3u8", {}, 404),
    (f"/hls/ingest-1/{SESSION}/index.m3u8", {}, 404),
    (f"/hls/ingest-1/{SOURCE}/init-0.mp4", {}, 404),
])
async def test_bad_requests_are_problems(client, live, path, params, status):
    r = await client.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_the_origin_knows_how_far_a_rendition_is_behind_the_wall_clock(client, pieces):
    """What the transcoder's watchdog reads: parts coming slower than real time add up to lag."""
    origin = client.app.state.origin
    origin.open(SESSION)
    origin.restart(SESSION)
    await origin.feed(SESSION, SOURCE, pieces[0] + pieces[1])
    assert origin.lag(SESSION, SOURCE) <= 0.05
    await asyncio.sleep(1.0)  # a third of a second of media took a whole second to come
    await origin.feed(SESSION, SOURCE, pieces[2])
    assert origin.lag(SESSION, SOURCE) >= 0.6
    origin.restart(SESSION)  # a new generation starts on time again, before its first part too
    assert origin.lag(SESSION, SOURCE) == 0
    await origin.feed(SESSION, SOURCE, pieces[0] + pieces[1])
    assert origin.lag(SESSION, SOURCE) <= 0.05
