"""The transcoder's command lines and its check that ffmpeg plays src (the real thing runs in
test_real_ingest.py and tests/e2e/test_llhls_through_gateway.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
from media_gateway.ingest.nginx_conf import parse_ladder
from media_gateway.llhls.transcoder import ffmpeg_argv, transcoders_playing

SOURCE_URL = "rtmp://127.0.0.1:1935/src/0123456789abcdef0123456789abcdef_src"


def outputs(argv: list[str]) -> list[list[str]]:
    """The arguments of each output (from one -map 0:v:0 to its pipe:N)."""
    out, current = [], None
    for arg in argv[argv.index(SOURCE_URL) + 1:]:
        if arg == "-map" and (current is None or current[-1].startswith("pipe:")):
            current = []
            out.append(current)
        current.append(arg)
    return out


def test_the_source_is_copied_and_each_rendition_encoded_to_its_own_pipe():
    source, p720, p360 = parse_ladder("source,720p,360p:600k")
    argv = ffmpeg_argv("ffmpeg", SOURCE_URL, [(source, 5)])
    (copied,) = outputs(argv)
    assert copied[-1] == "pipe:5" and "-c" in copied and copied[copied.index("-c") + 1] == "copy"
    argv = ffmpeg_argv("ffmpeg", SOURCE_URL, [(p720, 7), (p360, 8)], fps=30)
    first, second = outputs(argv)
    assert first[-1] == "pipe:7" and second[-1] == "pipe:8"
    assert "scale=-2:720" in first and "scale=-2:360" in second and "600k" in second
    for encoded in (first, second):
        # a key frame every second, on the second, whatever the picture does: segments line up
        assert encoded[encoded.index("-g") + 1] == "30" and encoded[encoded.index("-sc_threshold") + 1] == "0"
        assert "expr:gte(t,n_forced*1)" in encoded and "zerolatency" in encoded
        # CMAF: an init section, then a fragment at every key frame and about every third of a second
        assert encoded[encoded.index("-movflags") + 1] == "empty_moov+default_base_moof+frag_keyframe+negative_cts_offsets"
        assert int(encoded[encoded.index("-frag_duration") + 1]) < 333_333
        assert encoded[encoded.index("-flush_packets") + 1] == "1"
    # the probe keeps the first key frame (no nobuffer), and audio is optional
    assert "nobuffer" not in " ".join(argv) and argv.count("0:a:0?") == 2


def test_the_source_is_played_without_nagle():
    argv = ffmpeg_argv("ffmpeg", SOURCE_URL, [])
    before_input = argv[:argv.index("-i")]
    assert before_input[before_input.index("-tcp_nodelay") + 1] == "1"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_the_installed_ffmpeg_takes_the_input_options():
    # an option this ffmpeg does not know would fail every transcoder start in production
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: the play is refused at once
    url = f"rtmp://127.0.0.1:{port}/src/x"
    argv = ffmpeg_argv("ffmpeg", url, [])
    argv = [*argv[:argv.index("-i") + 2], "-f", "null", "-"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert "not found" not in result.stderr and "Unrecognized option" not in result.stderr, result.stderr


STAT = b"""<rtmp><server><application><name>src</name><live>
<stream><name>0123456789abcdef0123456789abcdef_src</name>
<client><id>1</id><flashver></flashver></client>
<client><id>2</id><flashver>LNX 9,0,124,2</flashver></client>
<client><id>3</id><flashver>LNX 9,0,124,2</flashver><publishing/></client>
</stream>
<stream><name>ffffffffffffffffffffffffffffffff_src</name>
<client><id>4</id><flashver>LNX 9,0,124,2</flashver></client>
</stream></live></application></server></rtmp>"""


def test_stat_counts_ffmpeg_players_of_the_session_only():
    assert transcoders_playing(STAT, "0123456789abcdef0123456789abcdef_src") == 1
    assert transcoders_playing(STAT, "ffffffffffffffffffffffffffffffff_src") == 1
    assert transcoders_playing(STAT, "00000000000000000000000000000000_src") == 0
