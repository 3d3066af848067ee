"""Low-Latency HLS through the gateway, with ffmpeg publishing into the real nginx-rtmp ingest: the
media gateway's transcoder plays the live source, its origin packages every rendition, the gateway
caches in front of it.

One stream serves every test here (the module's `live` fixture): the playlists carry the LL-HLS
tags and their parts decode; a blocking reload for the next part comes back once that part exists
(and not parts later); N viewers asking the same blocking reload or part at once cause one origin
fetch; a player without LL-HLS support (ffmpeg's HLS demuxer) plays the whole segments; the DVR
window (20 s in the e2e stack) lists segments older than the in-memory window, which come from the
origin's disk and decode, and delta updates skip the old part of the playlist.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import shutil
import subprocess
import time
import uuid

import httpx
import pytest
from servicekit.testing import poll

from .helpers import Creator, encoder, fetched, gateway_client, rtmp_url, stop

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                                  reason="needs ffmpeg and ffprobe")]

WAIT = 30.0
VIEWERS = 25


@pytest.fixture(scope="module")
def live(stack):
    """A channel live with a 640x360 30 fps test pattern and a tone, a key frame every second."""
    with gateway_client(stack) as gateway:
        creator = Creator(gateway, "ll")
        key = creator.keys()["streamKey"]
        stream_id = creator.go_live("LL-HLS", timeout=WAIT)
        publisher = encoder(rtmp_url(stack, key), seconds=120, size="640x360", rate=30, extra=["-pix_fmt", "yuv420p"])
        try:
            hls_url = poll("the stream LIVE with an hlsUrl", lambda: (
                s := creator.stream(stream_id))["status"] == "LIVE" and s["hlsUrl"])
            master = fetched(gateway, hls_url, WAIT)
            variants = [line for line in master.text.splitlines() if line.startswith("/hls/")]
            for variant in variants:  # every rendition has a whole segment
                poll(f"a segment in {variant}", lambda v=variant: "#EXTINF" in gateway.get(v).text)
            yield {"hlsUrl": hls_url, "master": master, "variants": variants,
                   "origin": f"http://127.0.0.1:{stack.config.service_ports['media-gateway']}"}
        finally:
            stop(publisher)


def tags(text: str, name: str) -> list[str]:
    return [line.split(":", 1)[1] for line in text.splitlines() if line.startswith(f"#{name}:")]


def parts(text: str) -> list[tuple[int, int]]:
    return [(int(m), int(p)) for m, p in re.findall(r'#EXT-X-PART:[^\n]*URI="part-(\d+)\.(\d+)\.m4s"', text)]


def hint(text: str) -> tuple[int, int]:
    m, p = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.(\d+)\.m4s"', text).groups()
    return int(m), int(p)


def decoded_frames(data: bytes) -> int:
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", "-"],
                           input=data, capture_output=True, timeout=30, check=False)
    assert probe.returncode == 0, probe.stderr
    return int(probe.stdout.decode().strip().split(",")[0] or 0)


def test_every_rendition_is_low_latency_hls_and_its_parts_decode(live, gateway):
    master = live["master"]
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert len(live["variants"]) >= 2 and "RESOLUTION=854x480" in master.text
    for variant in live["variants"]:
        r = gateway.get(variant)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        text = r.text
        control = dict(a.split("=") for a in tags(text, "EXT-X-SERVER-CONTROL")[0].split(","))
        part_target = float(tags(text, "EXT-X-PART-INF")[0].split("=")[1])
        assert control["CAN-BLOCK-RELOAD"] == "YES" and 0.2 <= part_target <= 0.4, text
        assert float(control["PART-HOLD-BACK"]) >= 3 * part_target  # the RFC's minimum is 2
        assert all(float(d) <= part_target for d in re.findall(r"#EXT-X-PART:DURATION=([\d.]+)", text))
        assert tags(text, "EXT-X-PROGRAM-DATE-TIME") and tags(text, "EXT-X-PART") and hint(text)
        assert tags(text, "EXT-X-TARGETDURATION") == ["1"]
        base = variant.rsplit("/", 1)[0]
        init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)[1]
        init = gateway.get(f"{base}/{init_uri}")
        assert init.status_code == 200 and init.headers["content-type"] == "video/mp4"
        # a part that starts with a key frame decodes on its own (with the init section); every part
        # is a CMAF fragment of about a third of a second
        independent = re.findall(r'#EXT-X-PART:DURATION=([\d.]+),URI="(part-\d+\.\d+\.m4s)",INDEPENDENT=YES', text)
        duration, name = independent[-1]
        part = gateway.get(f"{base}/{name}")
        assert part.status_code == 200 and "immutable" in part.headers["cache-control"]
        assert part.content[4:8] == b"moof"
        assert 0.25 <= float(duration) <= 0.4
        assert decoded_frames(init.content + part.content) >= 9, variant


def test_a_blocking_reload_returns_once_the_next_part_exists(live, gateway):
    variant = live["variants"][-1]
    # the origin's own playlist (the gateway may hand out one up to a second old): its preload hint
    # is the part the origin will announce next, not listed yet
    before = httpx.get(live["origin"] + variant, timeout=WAIT).text
    msn, part = hint(before)
    assert (msn, part) not in parts(before)
    r = gateway.get(f"{variant}?_HLS_msn={msn}&_HLS_part={part}", timeout=WAIT)
    assert r.status_code == 200, r.text
    after = parts(r.text)
    assert (msn, part) in after
    # held until that part existed, and answered then: at most one more part came meanwhile
    assert after.index((msn, part)) >= len(after) - 2, (msn, part, after[-4:])
    assert "public" in r.headers["cache-control"]

    # asking too far ahead, or in words, is the client's error (problem+json), never a 5xx
    for query in (f"_HLS_msn={msn + 50}", "_HLS_msn=soon", f"_HLS_part={part}", "_HLS_msn=-1"):
        bad = gateway.get(f"{variant}?{query}")
        assert bad.status_code == 400, (query, bad.status_code, bad.text)
        assert bad.headers["content-type"] == "application/problem+json"
    # a session its node does not hold, and a node the gateway does not know
    node_base = variant.rsplit("/", 2)[0]  # /hls/<node>
    for unknown in (f"{node_base}/{uuid.uuid4().hex}_src/index.m3u8", f"/hls/no-such-node/{uuid.uuid4().hex}/index.m3u8"):
        gone = gateway.get(unknown)
        assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json", unknown


def test_concurrent_viewers_of_one_part_reach_the_origin_once(live, gateway, stack):
    variant = live["variants"][0]
    base = variant.rsplit("/", 1)[0]
    msn, part = hint(gateway.get(variant).text)
    # the next part, and a blocking reload for the one after it (a part past the end of a segment is
    # the first of the next, RFC 8216bis 6.2.5.2), each asked by every viewer before it exists
    urls = [f"{variant}?_HLS_msn={msn}&_HLS_part={part + 1}", f"{base}/part-{msn}.{part}.m4s"]

    async def viewers() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=2 * VIEWERS)
        async with httpx.AsyncClient(base_url=str(gateway.base_url), timeout=WAIT, limits=limits) as http:
            return await asyncio.gather(*(http.get(url) for url in urls for _ in range(VIEWERS)))

    answers = asyncio.run(viewers())
    assert [r.status_code for r in answers] == [200] * (2 * VIEWERS)
    for url in urls:
        mine = [r for r in answers if str(r.url).endswith(url)]
        assert len(mine) == VIEWERS
        # the origin numbers its fetches of each URI: every viewer got the answer to the first one
        assert {r.headers["x-origin-fetch"] for r in mine} == {"1"}, url
        assert len({r.content for r in mine}) == 1
        assert sorted(r.headers["x-cache"] for r in mine).count("MISS") == 1, [r.headers["x-cache"] for r in mine]
        # asked at the origin itself (no cache), the same URI is its second fetch: the count is real
        direct = httpx.get(live["origin"] + url, timeout=WAIT)
        assert direct.status_code == 200 and direct.headers["x-origin-fetch"] == "2"
    # the gateway's access log tells the same per request (bench/hls_load.py counts origin fetches
    # from it): the blocking reload's numbers, and one request of each that reached the origin
    log = [json.loads(line) for line in (stack.config.data_dir / "nginx" / "logs" / "access.log").read_text().splitlines()]
    blocking = [r for r in log if r["path"] == variant and (r["hlsMsn"], r["hlsPart"]) == (str(msn), str(part + 1))]
    fetched = [r for r in log if r["path"] == urls[1]]
    for lines in (blocking, fetched):
        assert len(lines) == VIEWERS
        assert [r["cache"] for r in lines].count("MISS") == 1, [r["cache"] for r in lines]
        assert len([r for r in lines if r["upstream"]]) == 1


def test_concurrent_viewers_of_an_expired_playlist_reach_the_origin_once(live, gateway, stack):
    """While one viewer's refresh of an expired playlist is at the origin, the others get the copy
    being refreshed at once (`proxy_cache_use_stale updating`) instead of each going to the origin.
    The origin is held (SIGSTOP) for the whole burst, so "while" lasts as long as the test needs on
    any machine: without the directive every request waits for the origin and the check fails.
    (Timing the burst instead was no test: the origin answers a refresh in a few milliseconds, so on
    a quiet machine the burst passed with the directive removed, and on a busy one requests that
    read the cache entry's old header just after the refresh started refreshes of their own.)"""
    variant = live["variants"][0]
    origin_pid = stack.ingest_processes["media-gateway"].popen.pid

    def origin_count() -> int:  # a direct fetch counts itself too
        return int(httpx.get(live["origin"] + variant, timeout=WAIT).headers["x-origin-fetch"])

    async def viewers_while_the_origin_is_held() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=str(gateway.base_url), timeout=WAIT,
                                     limits=httpx.Limits(max_connections=VIEWERS)) as http:
            asked = [asyncio.ensure_future(http.get(variant)) for _ in range(VIEWERS)]
            os.kill(origin_pid, signal.SIGSTOP)
            try:
                done, _ = await asyncio.wait(asked, timeout=5)
            finally:
                os.kill(origin_pid, signal.SIGCONT)
            await asyncio.gather(*asked)
            answered_while_held = [t.result() for t in asked if t in done]
            return answered_while_held, [t.result() for t in asked]

    before = origin_count()
    assert gateway.get(variant).status_code == 200  # in the cache now (fetched, or already there)
    time.sleep(2.1)  # a plain playlist is cached for its max-age, 1 s (nginx counts whole seconds)
    held, answers = asyncio.run(viewers_while_the_origin_is_held())
    assert [r.status_code for r in answers] == [200] * VIEWERS
    # all but the one refreshing were answered from the cache while the origin could not answer
    assert len(held) >= VIEWERS - 1, " ".join(r.headers["x-cache"] for r in held)
    assert {r.headers["x-cache"] for r in held} <= {"UPDATING", "HIT"}, [r.headers["x-cache"] for r in held]
    # one refresh for everyone, at most one more fetch for the first request above
    assert origin_count() - before - 1 <= 2


def test_a_player_without_ll_hls_plays_the_whole_segments(live, stack):
    """ffmpeg's HLS demuxer knows nothing of EXT-X-PART: it must find whole segments and play them."""
    url = f"http://127.0.0.1:{stack.config.gateway_port}{live['variants'][0]}"
    played = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", url, "-t", "2",
                             "-map", "0:v:0", "-f", "framemd5", "-"], capture_output=True, timeout=60, check=False)
    assert played.returncode == 0, played.stderr.decode()[-500:]
    frames = [line for line in played.stdout.decode().splitlines() if line and not line.startswith("#")]
    assert len(frames) >= 45, len(frames)  # 2 s at 30 fps, give or take the edges


DVR_WINDOW = 20.0  # DVR_WINDOW_SECONDS in tests/e2e/conftest.py
IN_MEMORY = 6  # LLHLS_WINDOW_SEGMENTS' default


def test_the_dvr_window_lists_older_segments_served_from_disk(live, gateway):
    """Runs last in this module: the stream has been live the longest by then."""
    variant = live["variants"][0]
    # more complete segments than the origin keeps in memory: the oldest ones are on its disk
    text = poll("a playlist longer than the in-memory window", lambda: (
        t := gateway.get(variant).text).count("#EXTINF") >= IN_MEMORY + 4 and t, timeout=60)
    assert "#EXT-X-PLAYLIST-TYPE" not in text  # a sliding window, not an EVENT playlist
    assert sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)) <= DVR_WINDOW + 1.1
    segments = re.findall(r"^(seg-(\d+)\.m4s)$", text, re.MULTILINE)
    parted = {m for m, _ in parts(text)}
    # parts only near the edge: the oldest segments are listed whole, without EXT-X-PART
    assert len(parted) <= 4 and int(segments[0][1]) not in parted, text
    base = variant.rsplit("/", 1)[0]
    init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)[1]
    init = gateway.get(f"{base}/{init_uri}")
    for name, _ in segments[:1]:  # the oldest: beyond the in-memory window, so from disk
        r = gateway.get(f"{base}/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4", r.text
        assert decoded_frames(init.content + r.content) >= 25, name  # a whole second of 30 fps
    # the delta update: the segments before the skip boundary are replaced by EXT-X-SKIP
    control = tags(text, "EXT-X-SERVER-CONTROL")[0]
    skip_until = float(re.search(r"CAN-SKIP-UNTIL=([\d.]+)", control)[1])
    delta = gateway.get(variant, params={"_HLS_skip": "YES"})
    assert delta.status_code == 200
    skipped = int(re.search(r"#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)", delta.text)[1])
    listed = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", delta.text)]
    assert skipped >= 1 and sum(listed) <= skip_until + 1.1 and len(delta.text) < len(text)
    bad = gateway.get(variant, params={"_HLS_skip": "v2"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
