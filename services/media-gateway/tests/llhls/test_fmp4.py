"""Splitting real ffmpeg fragmented-MP4 output (1 s GOP, 1/3 s fragments, video + AAC) into the
init section and parts, fed in arbitrary chunks as a pipe delivers them."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from media_gateway.llhls.fmp4 import Fragment, FragmentReader, Init

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@pytest.fixture(scope="module")
def fragmented() -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
         "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-c:a", "aac", "-f", "mp4",
         "-movflags", "empty_moov+default_base_moof+frag_discont+negative_cts_offsets",
         "-frag_duration", "333333", "pipe:1"], capture_output=True, check=True).stdout


@needs_ffmpeg
@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_init_then_parts_of_a_third_of_a_second_with_a_key_frame_every_third(fragmented, chunk):
    reader = FragmentReader()
    out = []
    for i in range(0, len(fragmented), chunk):
        out += reader.feed(fragmented[i:i + chunk])
    assert isinstance(out[0], Init) and out[0].data[4:8] == b"ftyp"
    parts = out[1:]
    assert all(isinstance(p, Fragment) for p in parts)
    assert len(parts) == 9
    assert [round(p.duration, 3) for p in parts] == [0.333] * 9
    assert [p.independent for p in parts] == [True, False, False] * 3
    # nothing lost or duplicated: the pieces are the stream, up to ffmpeg's closing index (mfra)
    joined = b"".join(p.data for p in out)
    assert fragmented.startswith(joined) and fragmented[len(joined) + 4:len(joined) + 8] == b"mfra"


@needs_ffmpeg
def test_an_incomplete_box_waits_for_its_rest(fragmented):
    reader = FragmentReader()
    first_moof = fragmented.index(b"moof") - 4
    head = reader.feed(fragmented[:first_moof + 20])  # the init and a piece of the first moof
    assert [type(x) for x in head] == [Init] and len(head[0].data) == first_moof
    rest = reader.feed(fragmented[first_moof + 20:])
    assert rest and all(isinstance(x, Fragment) for x in rest) and rest[0].data.startswith(fragmented[first_moof:first_moof + 20])
