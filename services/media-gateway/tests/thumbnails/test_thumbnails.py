"""Live thumbnails from the newest complete HLS segment -> object store -> media.thumbnail.updated."""

import re
import secrets
import subprocess
from pathlib import Path

from media_gateway.thumbnails.service import latest_segment

KEY = "sk_" + secrets.token_urlsafe(24)


def write_hls(hls_dir: Path, session_id: str, renditions: dict[str, int], segments: int = 2) -> None:
    """HLS as nginx-rtmp writes it (nested, absolute /hls/ URIs, master named <session>.m3u8)."""
    master = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for suffix, bandwidth in renditions.items():
        name = f"{session_id}{suffix}"
        master += [f"#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH={bandwidth}", f"/hls/{name}/index.m3u8"]
    (hls_dir / f"{session_id}.m3u8").write_text("\n".join(master) + "\n")
    for suffix in renditions:
        folder = hls_dir / f"{session_id}{suffix}"
        folder.mkdir()
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-TARGETDURATION:1"]
        for n in range(segments):
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            "testsrc=size=320x240:rate=25", "-t", "1", "-c:v", "libx264", "-preset", "ultrafast",
                            "-f", "mpegts", str(folder / f"{n}.ts")], check=True)
            lines += ["#EXTINF:1.000,", f"/hls/{folder.name}/{n}.ts"]
        # a segment being written is not listed yet: it must never be picked
        (folder / f"{segments}.ts").write_bytes(b"partial")
        (folder / "index.m3u8").write_text("\n".join(lines) + "\n")


async def test_live_session_gets_a_thumbnail(rtmp, channels, events, media_settings, ffmpeg_tools, stored):
    channels.keys[KEY] = "chan-thumb"
    location = (await rtmp("publish", KEY, clientid="81")).headers["location"]
    session_id = re.search(r"/src/([0-9a-f]{32})_src$", location).group(1)
    write_hls(media_settings.hls_dir, session_id, {"_src": 6_000_000, "_src_480p": 1_500_000})

    event = await events.wait_for("media.thumbnail.updated", lambda d: d["channelId"] == "chan-thumb", timeout=20)
    url = event["data"]["url"]
    assert re.fullmatch(rf"/media/thumbnails/chan-thumb/{session_id}-\d+\.jpg", url)
    assert (await stored(url.removeprefix("/media/")))[:2] == b"\xff\xd8"
    assert KEY not in url


def test_latest_segment_prefers_the_smallest_rendition_and_complete_segments(tmp_path, ffmpeg_tools):
    session_id = "0123456789abcdef0123456789abcdef"
    write_hls(tmp_path, session_id, {"_src": 6_000_000, "_src_360p": 900_000}, segments=2)
    assert latest_segment(tmp_path, session_id) == tmp_path / f"{session_id}_src_360p" / "1.ts"


def test_latest_segment_without_hls_yet(tmp_path):
    assert latest_segment(tmp_path, "0123456789abcdef0123456789abcdef") is None
    # a master listing foreign or malformed names is ignored
    (tmp_path / "0123456789abcdef0123456789abcdef.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n/hls/../../etc/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2\n/hls/othersession_src/index.m3u8\n")
    assert latest_segment(tmp_path, "0123456789abcdef0123456789abcdef") is None
