"""The glass-to-glass benchmark's frame stamp (bench/_stamp.py) survives what the platform does to a
picture: x264 at the encoder's settings, then scaling to a rendition's height at a low bitrate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from _stamp import band_height, bits, decode_row, stamp_row

WIDTH, HEIGHT, FRAMES = 1280, 720, 45
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def test_a_misread_block_is_rejected_not_decoded_as_another_time():
    row = bytearray(stamp_row(123_456, WIDTH))
    assert decode_row(bytes(row), WIDTH) == 123_456
    block = WIDTH // 40
    flipped = 7 if bits(123_456)[7] == 0 else 8  # a block that is black, made white
    assert bits(123_456)[flipped] == 0
    row[flipped * block:(flipped + 1) * block] = b"\xeb" * block
    assert decode_row(bytes(row), WIDTH) is None


@needs_ffmpeg
@pytest.mark.parametrize("height,kbps", [(720, 2500), (480, 800), (240, 300)])
def test_stamps_survive_encoding_and_scaling(tmp_path, height, kbps):
    values = [4_000_000_000 - 33 * n for n in range(FRAMES)]  # large values: every one of the 32 bits used
    band = band_height(HEIGHT)
    grey = bytes([128]) * (WIDTH * (HEIGHT - band)) + bytes([128]) * (WIDTH * HEIGHT // 2)
    source = tmp_path / "source.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}",
                    "-r", "30", "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
                    "-b:v", "2500k", "-g", "30", "-y", str(source)],
                   input=b"".join(stamp_row(v, WIDTH) * band + grey for v in values), check=True)
    width = round(height * 16 / 9 / 2) * 2
    scaled = subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-vf", f"scale={width}:{height}",
                             "-c:v", "libx264", "-preset", "veryfast", "-b:v", f"{kbps}k", "-f", "mpegts", "-"],
                            capture_output=True, check=True).stdout
    luma = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                          input=scaled, capture_output=True, check=True).stdout
    size, row = width * height, band_height(height) // 2
    decoded = [decode_row(luma[i * size + row * width:i * size + (row + 1) * width], width)
               for i in range(len(luma) // size)]
    assert decoded == values


def _encode(values: list[int], fmt: str, scale: str | None = None) -> bytes:
    band = band_height(HEIGHT)
    grey = bytes([128]) * (WIDTH * (HEIGHT - band)) + bytes([128]) * (WIDTH * HEIGHT // 2)
    return subprocess.run(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}",
                           "-r", "30", "-i", "pipe:0", *(["-vf", scale] if scale else []), "-c:v", "libx264",
                           "-preset", "ultrafast", "-g", "30", "-f", fmt, "-"],
                          input=b"".join(stamp_row(v, WIDTH) * band + grey for v in values),
                          capture_output=True, check=True).stdout


@needs_ffmpeg
def test_the_breakdown_reads_the_first_frame_of_a_segment():
    import glass

    assert glass.first_frame_stamp(_encode([5_000, 5_033, 5_067], "mpegts", "scale=854:480")) == (5_000, 480)
    # as the origin serves it: an init section and the segment's first part (fragmented MP4, from a pipe)
    fragmented = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-c", "copy", "-f", "mp4", "-movflags",
                                 "empty_moov+default_base_moof+frag_keyframe", "-frag_duration", "100000", "pipe:1"],
                                input=_encode([7_000, 7_033, 7_067, 7_100, 7_133, 7_167], "mpegts"),
                                capture_output=True, check=True).stdout
    assert glass.first_frame_stamp(fragmented) == (7_000, 720)


@needs_ffmpeg
def test_the_recording_tail_yields_every_video_tag_once(tmp_path):
    import glass

    flv = _encode(list(range(0, 1000, 33)), "flv")
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    path = recordings / "sess_src.flv"
    watcher = glass.FileWatcher("http://127.0.0.1:9", recordings, "sess", "/hls/ingest-0/sess/index.m3u8")
    path.write_bytes(flv[: len(flv) // 2])  # a tag cut in the middle waits for the rest
    watcher._poll_flv(1.0)
    half = len(watcher.flv_tags)
    path.write_bytes(flv)
    watcher._poll_flv(2.0)
    assert 0 < half < len(watcher.flv_tags) == 31
    assert [ts for ts, _ in watcher.flv_tags] == [round(n * 1000 / 30) for n in range(31)]
