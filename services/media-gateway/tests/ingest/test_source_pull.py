"""src's pull of a session's source, started before on_publish answers (the go-live fast path).

The pull itself against real nginx-rtmp is in tests/test_real_ingest.py (the recording keeps the
broadcast's first second); here: the answer on_publish gives with and without it, its release,
and the pieces it is made of.
"""

import asyncio
import secrets
import time

import pytest

from devstack.ports import free_port

from media_gateway.config import Settings
from media_gateway.ingest.control import NginxControl
from media_gateway.ingest.rtmp_client import amf_decode, amf_encode
from media_gateway.ingest.source_pull import SourcePulls, live_stream_has_clients

KEY = "sk_" + secrets.token_urlsafe(24)

# what nginx-rtmp 1.2.2's rtmp_stat said while a pull of abc_src waited in `live` (trimmed)
STAT = b"""<?xml version="1.0" encoding="utf-8" ?>
<rtmp><nginx_version>1.22.1</nginx_version><server>
<application><name>live</name><live>
<stream><name>abc_src</name><time>252</time>
<client><id>3</id><address>unix:</address><time>252</time><flashver>LNX.11,1,102,55</flashver></client>
<nclients>1</nclients></stream>
<stream><name>idle_src</name><time>9</time><nclients>0</nclients></stream>
<nclients>1</nclients></live></application>
<application><name>src</name><live>
<stream><name>only_in_src</name><time>253</time>
<client><id>2</id><address>unix:/tmp/x/rtmp.sock</address><flashver>ngx-local-relay</flashver><publishing/></client>
<nclients>1</nclients><publishing/></stream>
<nclients>1</nclients></live></application>
</server></rtmp>
"""


class FakePulls:
    enabled = True

    def __init__(self, starts: bool):
        self.starts = starts
        self.started: list[str] = []
        self.released: list[str] = []
        self.changed = asyncio.Event()

    def holds(self, session_id: str) -> bool:
        return False

    async def start(self, session_id: str, stream_name: str) -> bool:
        assert stream_name == f"{session_id}_src"
        self.started.append(stream_name)
        return self.starts

    async def release(self, session_id: str, stream_name: str) -> None:
        self.released.append(stream_name)
        self.changed.set()

    async def close(self) -> None:
        pass


@pytest.fixture
def with_pulls(client):
    def install(starts: bool) -> FakePulls:
        client.app.state.pulls = fake = FakePulls(starts)
        return fake

    return install


async def test_with_the_pull_started_the_publisher_is_renamed_in_place(rtmp, channels, events, with_pulls):
    pulls = with_pulls(starts=True)
    channels.keys[KEY] = "chan-pull"
    r = await rtmp("publish", KEY, clientid="201")
    assert r.status_code == 302
    # a bare name: nginx-rtmp renames the publisher in `live`, where the pull is already waiting
    assert r.headers["location"] == pulls.started[0]
    session_id = pulls.started[0].removesuffix("_src")
    event = await events.wait_for("media.ingest.connected", lambda d: d["channelId"] == "chan-pull")
    assert event["data"]["ingestSessionId"] == session_id

    # on_update and on_publish_done repeat the key; they still find the session
    assert (await rtmp("update_publish", KEY, clientid="201")).status_code == 204
    assert (await rtmp("publish_done", KEY, clientid="201")).status_code == 204
    await asyncio.wait_for(pulls.changed.wait(), 5)
    assert pulls.released == [f"{session_id}_src"]
    await events.wait_for("media.ingest.disconnected", lambda d: d["ingestSessionId"] == session_id)


async def test_without_the_pull_the_source_is_pushed(rtmp, channels, with_pulls):
    pulls = with_pulls(starts=False)
    channels.keys[KEY] = "chan-push"
    r = await rtmp("publish", KEY, clientid="202")
    assert r.status_code == 302
    assert r.headers["location"] == f"rtmp://127.0.0.1:1935/src/{pulls.started[0]}"


async def test_a_refused_key_starts_no_pull(rtmp, with_pulls):
    pulls = with_pulls(starts=True)
    assert (await rtmp("publish", "sk_nobody_knows_this_key_0001", clientid="203")).status_code == 403
    assert pulls.started == []


async def test_an_unknown_publish_done_releases_nothing(rtmp, with_pulls):
    pulls = with_pulls(starts=True)
    assert (await rtmp("publish_done", KEY, clientid="204")).status_code == 204
    assert pulls.released == []


async def test_a_superseded_session_is_released_when_its_publisher_goes(rtmp, channels, with_pulls):
    pulls = with_pulls(starts=True)
    channels.keys[KEY] = "chan-twice"
    first = (await rtmp("publish", KEY, clientid="205")).headers["location"]
    second = (await rtmp("publish", KEY, clientid="206")).headers["location"]
    assert first != second
    # the first session was ended by the second publish; nginx reports its publisher gone later
    assert (await rtmp("publish_done", KEY, clientid="205")).status_code == 204
    await asyncio.wait_for(pulls.changed.wait(), 5)
    assert pulls.released == [first]


async def test_a_pull_that_cannot_connect_falls_back_at_once(media_settings):
    settings = media_settings.model_copy(update={"ingest_source_pull": True,
                                                 "ingest_rtmp_url": f"rtmp://127.0.0.1:{free_port()}"})
    pulls = SourcePulls(settings, NginxControl(None, "live"))
    started = time.monotonic()
    assert await pulls.start("a" * 32, "a" * 32 + "_src") is False
    assert time.monotonic() - started < settings.source_pull_timeout_seconds
    assert not pulls.holds("a" * 32)
    await pulls.release("a" * 32, "a" * 32 + "_src")  # nothing held, no control URL: a no-op


async def test_a_server_that_never_answers_times_out(media_settings):
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    settings = media_settings.model_copy(update={"ingest_source_pull": True, "source_pull_timeout_seconds": 0.3,
                                                 "ingest_rtmp_url": f"rtmp://127.0.0.1:{port}"})
    try:
        started = time.monotonic()
        assert await SourcePulls(settings, NginxControl(None, "live")).start("b" * 32, "b" * 32 + "_src") is False
        assert time.monotonic() - started < 1.5
    finally:
        silent.close()


def test_rtmp_stat_tells_whether_the_pull_waits_in_live():
    assert live_stream_has_clients(STAT, "live", "abc_src")
    assert not live_stream_has_clients(STAT, "live", "idle_src")  # listed, nobody waiting
    assert not live_stream_has_clients(STAT, "live", "only_in_src")
    assert not live_stream_has_clients(STAT, "live", "missing_src")


def test_the_stat_url_sits_beside_the_control_url():
    assert Settings(ingest_control_url="http://ingest:8186/control").ingest_stat == "http://ingest:8186/stat"
    assert Settings(ingest_control_url="http://ingest:8186/control/").ingest_stat == "http://ingest:8186/stat"
    assert Settings(ingest_control_url=None).ingest_stat is None
    assert Settings(ingest_control_url=None, ingest_stat_url="http://x/s").ingest_stat == "http://x/s"
    assert Settings(rtmp_internal_url="rtmp://127.0.0.1:1999").ingest_rtmp_address == ("127.0.0.1", 1999)
    assert Settings(ingest_rtmp_url="rtmp://ingest").ingest_rtmp_address == ("ingest", 1935)


def test_amf0_round_trip():
    values = ["onStatus", 0.0, None, {"level": "status", "code": "NetStream.Play.Start", "ok": True}]
    assert amf_decode(amf_encode(*values)) == values
    ecma = b"\x08\x00\x00\x00\x01\x00\x01a\x00" + b"\x3f\xf0" + bytes(6) + b"\x00\x00\x09"
    assert amf_decode(ecma) == [{"a": 1.0}]
    with pytest.raises(TypeError):
        amf_encode(object())
