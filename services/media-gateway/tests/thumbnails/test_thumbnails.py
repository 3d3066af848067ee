"""Live thumbnails from the newest complete segment in the LL-HLS origin -> object store ->
media.thumbnail.updated. The origin is fed real ffmpeg fragmented MP4, as the transcoder feeds it."""

import asyncio
import re
import secrets
import subprocess

from media_gateway.ingest.nginx_conf import parse_ladder
from media_gateway.llhls.origin import Origin
from media_gateway.thumbnails.service import latest_segment

KEY = "sk_" + secrets.token_urlsafe(24)


def fragmented(height: int, seconds: int = 3) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={height * 16 // 9}x{height}:rate=30",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30",
         "-sc_threshold", "0", "-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe",
         "-frag_duration", "330000", "pipe:1"], capture_output=True, check=True).stdout


async def transcode_into(origin: Origin, session_id: str, heights: dict[str, int]) -> None:
    """What the transcoder does: open the session, start a generation, feed each rendition."""
    origin.open(session_id)
    origin.restart(session_id)
    for suffix, height in heights.items():
        await origin.feed(session_id, f"{session_id}{suffix}", fragmented(height))


async def test_live_session_gets_a_thumbnail(client, rtmp, channels, events, ffmpeg_tools, stored):
    channels.keys[KEY] = "chan-thumb"
    location = (await rtmp("publish", KEY, clientid="81")).headers["location"]
    session_id = re.search(r"/src/([0-9a-f]{32})_src$", location).group(1)
    await transcode_into(client.app.state.origin, session_id, {"_src": 360, "_src_480p": 180})

    event = await events.wait_for("media.thumbnail.updated", lambda d: d["channelId"] == "chan-thumb", timeout=20)
    url = event["data"]["url"]
    assert re.fullmatch(rf"/media/thumbnails/chan-thumb/{session_id}-\d+\.jpg", url)
    assert (await stored(url.removeprefix("/media/")))[:2] == b"\xff\xd8"
    assert KEY not in url


async def test_latest_segment_prefers_the_smallest_rendition_and_complete_segments(ffmpeg_tools):
    origin = Origin(parse_ladder("source,720p,360p"))
    session_id = "0123456789abcdef0123456789abcdef"
    await transcode_into(origin, session_id, {"_src": 360, "_src_720p": 180, "_src_360p": 90})
    data = latest_segment(origin, session_id)
    playlist = origin.sessions[session_id].renditions[f"{session_id}_src_360p"].playlist
    # segments 0 and 1 are complete (the third is still open: no key frame after it yet)
    assert [s.complete for s in playlist.segments] == [True, True, False]
    probe = (await asyncio.to_thread(
        subprocess.run, ["ffprobe", "-v", "error", "-show_entries", "stream=height:format=duration", "-of",
                         "default=nw=1", "-"], input=data, capture_output=True, check=True)).stdout.decode()
    assert "height=90" in probe


def test_latest_segment_without_media_yet():
    origin = Origin(parse_ladder(None))
    assert latest_segment(origin, "0123456789abcdef0123456789abcdef") is None
    origin.open("0123456789abcdef0123456789abcdef")
    assert latest_segment(origin, "0123456789abcdef0123456789abcdef") is None
