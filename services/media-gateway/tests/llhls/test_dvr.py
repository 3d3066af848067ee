"""DVR: the playlist keeps DVR_WINDOW_SECONDS of media with parts only near the live edge, offers
delta updates, and the origin keeps only the newest segments in memory, the older ones in its spool
folder (served from there, deleted once off the playlist)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from media_gateway.llhls.fmp4 import boxes
from media_gateway.llhls.origin import Gone
from media_gateway.llhls.playlist import MediaPlaylist

T0 = datetime(2026, 12, 3, 17, 0, 0, tzinfo=UTC)
PART = 1 / 3
SESSION = "fedcba9876543210fedcba9876543210"
SOURCE = f"{SESSION}_src"


def feed(playlist: MediaPlaylist, parts: int) -> None:
    for i in range(parts):
        playlist.add_part(PART, i % 3 == 0, T0 + timedelta(seconds=i * PART))


def extinf(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"^#EXTINF:([\d.]+),", text, re.MULTILINE)]


def test_the_playlist_keeps_the_dvr_window_with_parts_only_near_the_edge():
    playlist = MediaPlaylist(window=6, dvr_seconds=20, part_segments=3)
    feed(playlist, 3 * 60)  # a minute of 1 s segments
    text = playlist.render()
    listed = sum(extinf(text))
    assert 20 - 1e-6 <= listed < 21, listed  # the window, not the whole minute, not only 6 segments
    assert len(playlist.segments) == 21  # 20 complete and the open one: bounded by the window
    assert f"#EXT-X-MEDIA-SEQUENCE:{playlist.segments[0].msn}" in text and playlist.segments[0].msn == 39
    parted = sorted({int(m) for m in re.findall(r'#EXT-X-PART:.*URI="part-(\d+)\.\d+\.m4s"', text)})
    assert parted == [56, 57, 58, 59]  # the last three complete segments and the open one
    assert "#EXT-X-PLAYLIST-TYPE" not in text  # a sliding window: EVENT would grow all stream long
    feed_more = playlist.add_part(PART, True, T0 + timedelta(seconds=60))
    assert feed_more == (60, 0) and playlist.segments[0].msn == 40 and playlist.seconds < 21


def test_without_a_dvr_window_the_playlist_is_the_short_live_window_without_deltas():
    playlist = MediaPlaylist(window=6)
    feed(playlist, 3 * 60)
    text = playlist.render(skip=True)
    assert len(extinf(text)) == 6 and "CAN-SKIP-UNTIL" not in text and "#EXT-X-SKIP" not in text


def test_a_delta_update_skips_the_segments_before_the_skip_boundary():
    playlist = MediaPlaylist(window=6, dvr_seconds=30)
    feed(playlist, 3 * 40 + 1)
    full, delta = playlist.render(), playlist.render(skip=True)
    assert "CAN-BLOCK-RELOAD=YES" in full and "CAN-SKIP-UNTIL=6.0" in full  # six target durations
    assert "#EXT-X-SKIP" not in full
    skipped = int(re.search(r"#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)", delta)[1])
    # whatever is listed after the skip covers the skip boundary; nothing more than one segment past it
    assert 6 <= sum(extinf(delta)) + PART < 7 + 1e-6
    assert skipped + len(extinf(delta)) == len(extinf(full)) == 30
    # the same media sequence and the same tail: a player merges the delta into what it has
    assert re.search(r"#EXT-X-MEDIA-SEQUENCE:\d+", delta)[0] == re.search(r"#EXT-X-MEDIA-SEQUENCE:\d+", full)[0]
    assert full.endswith(delta.split("#EXT-X-PROGRAM-DATE-TIME", 1)[1])
    assert '#EXT-X-MAP:URI="init.mp4"' in delta and len(delta) * 2 < len(full)


def test_a_delta_names_the_init_section_of_its_first_listed_segment():
    playlist = MediaPlaylist(window=6, dvr_seconds=30)
    feed(playlist, 3 * 10)
    playlist.restart("init-1.mp4")
    for i in range(3 * 20):
        playlist.add_part(PART, i % 3 == 0, T0 + timedelta(seconds=10 + i * PART))
    delta = playlist.render(skip=True)
    assert "#EXT-X-SKIP:" in delta
    assert re.findall(r'#EXT-X-MAP:URI="([^"]+)"', delta) == ["init-1.mp4"]
    assert "#EXT-X-DISCONTINUITY\n" not in delta  # the discontinuity lies in the skipped part


# ---- the origin: memory bounded, older segments on disk and served from there ---------------------

@pytest.fixture(scope="module")
def pieces() -> list[bytes]:
    """ftyp+moov, then one moof+mdat per third of a second (a key frame every second), 8 s."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    data = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-f", "lavfi", "-i",
         "sine=sample_rate=44100", "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
         "-keyint_min", "30", "-sc_threshold", "0", "-c:a", "aac", "-f", "mp4",
         "-movflags", "empty_moov+default_base_moof+frag_keyframe", "-frag_duration", "330000", "pipe:1"],
        capture_output=True, check=True).stdout
    out, head = [], b""
    for kind, payload, end in boxes(data):
        box = data[payload - 8:end]
        if kind in ("ftyp", "moof"):
            head = box
        elif kind in ("moov", "mdat"):
            out.append(head + box)
    return out


async def test_memory_holds_the_newest_segments_and_the_disk_the_rest_of_the_window(make_client, pieces, tmp_path):
    spool = tmp_path / "dvr-spool"
    async with make_client(dvr_window_seconds=4, dvr_root=spool, llhls_window_segments=3) as client:
        origin = client.app.state.origin
        origin.open(SESSION)
        origin.restart(SESSION)
        r = origin.sessions[SESSION].renditions[SOURCE]
        for piece in pieces:
            await origin.feed(SESSION, SOURCE, piece)
        segments = list(r.playlist.segments)
        msns = [s.msn for s in segments]
        assert 4 <= r.playlist.seconds < 5.1 and msns[0] > 0  # the window, the oldest trimmed
        # memory: parts of the newest three segments only (the open one included)
        assert {msn for msn, _ in r.parts} == set(msns[-3:])
        folder = spool / "ingest-0" / SESSION / SOURCE
        on_disk = sorted(int(p.name[4:-4]) for p in folder.glob("seg-*.m4s"))
        assert on_disk == msns[:-3]  # the rest of the window, and nothing trimmed off it
        text = (await client.get(f"/hls/ingest-0/{SOURCE}/index.m3u8")).text
        assert f"seg-{msns[0]}.m4s" in text
        # a segment from disk is served whole: the parts it was made of, in order
        old = await client.get(f"/hls/ingest-0/{SOURCE}/seg-{msns[0]}.m4s")
        assert old.status_code == 200 and old.content[4:8] == b"moof"
        assert old.content == (folder / f"seg-{msns[0]}.m4s").read_bytes()
        trimmed = await client.get(f"/hls/ingest-0/{SOURCE}/seg-{msns[0] - 1}.m4s")
        assert trimmed.status_code == 404 and trimmed.headers["content-type"] == "application/problem+json"
        # the stream ends and its linger passes: the folder goes with it
        await origin.end(SESSION)
        origin.linger_seconds = 0
        with pytest.raises(Gone):
            origin.session(SESSION)
        for _ in range(100):  # the folder is removed off the event loop
            if not (spool / "ingest-0" / SESSION).exists():
                break
            await asyncio.sleep(0.05)
        assert not (spool / "ingest-0" / SESSION).exists()


@pytest.mark.parametrize("value", ["NO", "v2", "yes", ""])
async def test_a_bad_skip_request_is_a_problem(client, pieces, value):
    origin = client.app.state.origin
    origin.open(SESSION)
    origin.restart(SESSION)
    await origin.feed(SESSION, SOURCE, b"".join(pieces[:4]))
    r = await client.get(f"/hls/ingest-0/{SOURCE}/index.m3u8", params={"_HLS_skip": value})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
