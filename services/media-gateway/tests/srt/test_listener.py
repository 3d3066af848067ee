"""The SRT listener against real libsrt and ffmpeg as the SRT caller. Channels' answer is a local
function here (tests/e2e/test_srt_ingest_through_gateway.py asks the real channels service through
the whole stack): what is checked is that the handshake itself rejects, that nothing but a
well-shaped publish key is ever asked about, and that a failure inside the callback is a rejection,
never an accepted caller."""

import asyncio
import shutil
import subprocess

import pytest
from media_gateway.config import Settings
from media_gateway.ingest.service import Refused
from media_gateway.srt import libsrt
from media_gateway.srt.service import BadStreamId, SrtIngest, key_from_streamid, relay_command

GOOD = "live_" + "a" * 43

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def test_the_key_is_the_streamid_or_its_access_control_resource():
    assert key_from_streamid(GOOD) == GOOD
    assert key_from_streamid(f"#!::r={GOOD},m=publish") == GOOD
    assert key_from_streamid(f"#!::m=publish,r={GOOD}") == GOOD
    assert key_from_streamid(f"#!::r={GOOD}") == GOOD  # publish is the only mode a caller has here
    with pytest.raises(BadStreamId, match="mode"):
        key_from_streamid(f"#!::r={GOOD},m=request")
    with pytest.raises(BadStreamId):
        key_from_streamid("#!::garbage")
    assert key_from_streamid("#!::m=publish") == ""  # no resource: the shape check refuses it


def test_the_relay_copies_into_the_nodes_own_rtmp_app():
    argv = relay_command(Settings(rtmp_internal_url="rtmp://127.0.0.1:1936/", ingest_app="live"), GOOD)
    assert argv[-1] == f"rtmp://127.0.0.1:1936/live/{GOOD}"
    assert argv[argv.index("-c") + 1] == "copy" and argv[argv.index("-i") + 1] == "pipe:0"


async def _call(port: int, streamid: str, seconds: int = 3) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
        "-i", "testsrc=size=160x120:rate=10", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
        "-f", "mpegts", f"srt://127.0.0.1:{port}?streamid={streamid}",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, err


@pytest.fixture
async def listener():
    asked: list[tuple[str, str | None]] = []
    behaviour = {"mode": "refuse"}

    async def authorize(key: str, client: str | None) -> None:
        asked.append((key, client))
        if behaviour["mode"] == "crash":
            raise RuntimeError("a bug in the authorizer")
        if behaviour["mode"] == "refuse" or key != GOOD:
            raise Refused("refused by channels: unknown key")

    # the relay's RTMP target is a closed port: an accepted caller's relay fails at once
    ingest = SrtIngest(Settings(srt_port=0, srt_host="127.0.0.1", rtmp_internal_url="rtmp://127.0.0.1:9",
                                transcoder_end_grace_seconds=0.5), authorize)
    ingest.start(asyncio.get_running_loop())
    try:
        yield ingest, asked, behaviour
    finally:
        await asyncio.to_thread(ingest.close)


async def test_a_refused_key_is_rejected_in_the_handshake(listener):
    ingest, asked, _ = listener
    code, err = await _call(ingest.port, GOOD)
    assert code != 0 and b"reject" in err.lower(), err[-300:]
    assert asked == [(GOOD, "127.0.0.1")]
    assert ingest.relays == {}


async def test_malformed_keys_and_other_modes_are_rejected_without_asking(listener):
    ingest, asked, behaviour = listener
    behaviour["mode"] = "allow"
    for streamid in ("", "a/b", "x" * 129, f"%23!::r={GOOD},m=request"):
        code, err = await _call(ingest.port, streamid, seconds=1)
        assert code != 0 and b"reject" in err.lower(), (streamid, err[-300:])
    assert asked == []


async def test_an_error_in_the_authorization_rejects_the_caller(listener):
    ingest, asked, behaviour = listener
    behaviour["mode"] = "crash"
    code, err = await _call(ingest.port, GOOD)
    assert code != 0 and b"reject" in err.lower(), err[-300:]
    assert asked


async def test_an_accepted_caller_is_cut_when_its_relay_ends(listener):
    ingest, asked, behaviour = listener
    behaviour["mode"] = "allow"
    # 30 s of input, but the relay cannot publish (closed RTMP port): the caller must not hang on
    _, err = await _call(ingest.port, GOOD, seconds=30)
    assert b"reject" not in err.lower(), err[-300:]
    assert asked == [(GOOD, "127.0.0.1")]
    for _ in range(100):  # the pump thread forgets the relay once ffmpeg is reaped
        if not ingest.relays:
            break
        await asyncio.sleep(0.1)
    assert ingest.relays == {}


def test_the_library_loads_and_binds_an_ephemeral_port():
    sock = libsrt.Socket()
    try:
        sock.bind("127.0.0.1", 0)
        assert sock.port() > 0
    finally:
        sock.close()
