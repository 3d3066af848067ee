"""stream.vod_requested -> media.vod.joined: a stream's parts joined, in order, into one VOD in the
real object store (SeaweedFS), with the real ffmpeg; and the rule that decides copy or re-encode."""

import subprocess
import uuid
from pathlib import Path

import pytest
from contracts.envelope import make_event
from contracts.events.streams import StreamVodRequested
from media_gateway import media
from media_gateway.recordings.service import vod_key
from servicekit.storage import ObjectStore
from sqlalchemy import text

RED, BLUE = (255, 0, 0), (0, 0, 255)


def make_part(path: Path, color: str, seconds: int, size: str = "320x240") -> Path:
    """A recorded part as the recording worker stores it: an MP4 (H.264 + AAC) of one colour."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c={color}:s={size}:r=25", "-f", "lavfi", "-i", "sine", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-movflags", "+faststart", str(path)], check=True, capture_output=True, timeout=60)
    return path


def probe(path: Path) -> tuple[float, str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "format=duration:stream=width,height", "-of", "default=nw=1", str(path)],
                         check=True, capture_output=True, timeout=30).stdout.decode()
    fields = dict(line.split("=", 1) for line in out.splitlines())
    return float(fields["duration"]), f"{fields['width']}x{fields['height']}"


def colour_at(path: Path, seconds: float) -> tuple[int, int, int]:
    """The mean colour of the frame at `seconds` (scaled to one pixel)."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", str(seconds), "-i", str(path),
                          "-frames:v", "1", "-vf", "scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True, timeout=30).stdout
    return out[0], out[1], out[2]


def near(colour: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(colour, expected, strict=True))


@pytest.fixture
def store(media_settings):
    return ObjectStore.from_settings(media_settings)


async def request_join(nc, stream_id: str, parts: list[str]) -> None:
    event = make_event("stream.vod_requested", StreamVodRequested(
        stream_id=stream_id, channel_id="chan-vod", ingest_session_ids=parts), source="streams")
    await nc.jetstream().publish("stream.vod_requested", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})


async def stored_parts(store, settings, tmp_path: Path, specs: list[tuple[str, int, str]]) -> list[str]:
    ids = []
    for color, seconds, size in specs:
        sid = uuid.uuid4().hex
        await store.put_file(vod_key(settings, sid), make_part(tmp_path / f"{sid}.mp4", color, seconds, size),
                             "video/mp4")
        ids.append(sid)
    return ids


@pytest.mark.parametrize("sizes, reencoded", [(("320x240", "320x240"), False), (("320x240", "160x120"), True)],
                         ids=["same encoder: copied", "settings differ: re-encoded"])
async def test_parts_are_joined_in_the_order_asked_into_one_vod(
        client, nc, events, store, media_settings, tmp_path, ffmpeg_tools, sizes, reencoded):
    # the second part is listed first in the store's terms (a later session id sorts anywhere):
    # only the request's order counts
    second, first = await stored_parts(store, media_settings, tmp_path,
                                       [("blue", 2, sizes[1]), ("red", 3, sizes[0])])
    stream_id = str(uuid.uuid4())
    await request_join(nc, stream_id, [first, second])

    joined = (await events.wait_for("media.vod.joined", lambda d: d["streamId"] == stream_id, timeout=60))["data"]
    assert joined["ingestSessionIds"] == [first, second]
    assert joined["vodUrl"] == f"{media_settings.vod_base_url}/{stream_id}.mp4"
    assert joined["reencoded"] is reencoded

    out = tmp_path / "joined.mp4"
    await store.get_file(f"{media_settings.vod_key_prefix}/{stream_id}.mp4", out)
    duration, size = probe(out)
    assert 4.5 <= duration <= 5.6, duration  # 3 s + 2 s
    assert abs(joined["durationSeconds"] - duration) < 0.01
    assert size == "320x240"  # the first part's picture
    assert near(colour_at(out, 0.2), RED) and near(colour_at(out, 4.5), BLUE)
    assert not list((media_settings.vod_dir / "joins").glob("*")), "the join's work files were left behind"


async def test_a_request_names_each_stream_once(client, nc, events, store, media_settings, tmp_path, ffmpeg_tools,
                                                 eventually):
    first, second = await stored_parts(store, media_settings, tmp_path, [("red", 1, "320x240"), ("blue", 1, "320x240")])
    stream_id = str(uuid.uuid4())
    await request_join(nc, stream_id, [first, second])
    await events.wait_for("media.vod.joined", lambda d: d["streamId"] == stream_id, timeout=60)
    await request_join(nc, stream_id, [first, second])  # a re-sent request under a new id
    await request_join(nc, stream_id, [second, first])
    last = (await nc.jetstream().stream_info("EVENTS")).state.last_seq

    async def delivered():
        return await nc.jetstream().consumer_info("EVENTS", "media-gateway-vod-joins")

    await eventually(delivered, lambda i: i.delivered.stream_seq >= last and i.num_ack_pending == 0,
                     what="the requests handled")
    async with client.app.state.runtime.db.session() as session:
        rows = (await session.exec(text("SELECT parts, attempts FROM vod_joins"))).all()
    assert [(list(r.parts), r.attempts) for r in rows] == [([first, second], 1)]


def test_copy_only_when_every_part_has_the_same_streams():
    video = {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720, "extradata_hash": "md5:1"}
    audio = {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "extradata_hash": "md5:2"}
    assert media.can_copy([[video, audio], [dict(video), dict(audio)]])
    assert not media.can_copy([[video, audio], [{**video, "width": 1920}, audio]])
    assert not media.can_copy([[video, audio], [{**video, "extradata_hash": "md5:3"}, audio]])  # other SPS/PPS
    assert not media.can_copy([[video, audio], [video]])  # the encoder dropped its audio
    assert not media.can_copy([])
