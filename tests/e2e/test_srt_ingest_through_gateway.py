"""SRT ingest (API.md Extensions) through the whole stack: `GET /api/channels/{id}/stream-key` answers
an `srtUrl` (the key as the SRT streamid); ffmpeg publishing MPEG-TS over SRT to it goes LIVE, plays
as HLS through the gateway, is dropped by End stream like an RTMP encoder and ends as a VOD; a wrong
key (a rotated one) and a streamid asking for anything but a publish are rejected in the handshake,
and no stream starts. No key reaches a log."""

import shutil
import subprocess
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from servicekit.testing import poll

from .helpers import Creator, assert_never_logged, encoder, first_variant_url, stop, vod_duration

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                                  reason="needs ffmpeg and ffprobe")]


def _local(srt_url: str, stack) -> str:
    """The public srtUrl, aimed at this machine's listener (the stack's public host is `localhost`)."""
    parts = urlsplit(srt_url)
    assert parts.scheme == "srt" and parts.port == stack.config.srt_port, srt_url
    return parts._replace(netloc=f"127.0.0.1:{parts.port}").geturl()


def _encoder(url: str, seconds: int = 60) -> subprocess.Popen:
    """ffmpeg as an SRT caller: H.264 + AAC in MPEG-TS (as OBS sends); its stderr says why it was refused."""
    return encoder(url, seconds=seconds, fmt="mpegts", stderr=subprocess.PIPE)


def _first_variant_segment(gateway: httpx.Client, master_url: str) -> bytes | None:
    variant = first_variant_url(gateway, master_url)
    if variant is None:
        return None
    playlist = gateway.get(variant)
    segments = [x for x in playlist.text.splitlines() if x and not x.startswith("#")]
    init = next((line.split('URI="', 1)[1].split('"', 1)[0] for line in playlist.text.splitlines()
                 if line.startswith("#EXT-X-MAP:")), None)
    if not segments or not init:
        return None
    base = variant.rsplit("/", 1)[0]
    init_r, seg_r = gateway.get(f"{base}/{init}"), gateway.get(f"{base}/{segments[0]}")
    if init_r.status_code != 200 or seg_r.status_code != 200:
        return None
    return init_r.content + seg_r.content


def test_stream_key_answers_an_srt_url_with_the_key_as_streamid(gateway, stack):
    creator = Creator(gateway, "srt")
    keys = creator.keys()
    url = urlsplit(keys["srtUrl"])
    assert url.scheme == "srt" and url.port == stack.config.srt_port
    assert parse_qs(url.query) == {"streamid": [keys["streamKey"]]}
    rotated = gateway.post(f"/api/channels/{creator.channel['id']}/stream-key/rotate", headers=creator.auth).json()
    assert parse_qs(urlsplit(rotated["srtUrl"]).query)["streamid"] == [rotated["streamKey"]] != [keys["streamKey"]]


def test_an_srt_publish_goes_live_plays_and_ends_as_a_vod(gateway, stack):
    creator = Creator(gateway, "srt")
    keys = creator.keys()
    stream_id = creator.go_live("Over SRT")
    publisher = _encoder(_local(keys["srtUrl"], stack))
    try:
        live = creator.wait_live(stream_id)
        assert live["hlsUrl"] and keys["streamKey"] not in live["hlsUrl"]
        media = poll("a segment of the first rendition through the gateway",
                     lambda: _first_variant_segment(gateway, live["hlsUrl"]), timeout=30, every=0.5)
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", "-"],
                               input=media, capture_output=True, timeout=20, check=False)
        assert b"video" in probe.stdout, probe.stderr
        time.sleep(3)  # a few seconds on air, so the recording has something in it
        r = gateway.post(f"/api/streams/{stream_id}/end", headers=creator.auth)
        assert r.status_code == 202, r.text
        # End drops the ingest: the relay's RTMP publish is dropped and with it the SRT connection
        try:
            publisher.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail("the ended stream's SRT encoder is still connected")
    finally:
        stop(publisher)

    archived = creator.wait_archived(stream_id)
    assert archived["vodUrl"], archived
    assert vod_duration(gateway, archived["vodUrl"]) >= 3
    assert_never_logged(stack, [keys["streamKey"]])


def test_a_wrong_key_or_a_non_publish_streamid_is_rejected_in_the_handshake(gateway, stack):
    creator = Creator(gateway, "srt")
    old = creator.keys()
    r = gateway.post(f"/api/channels/{creator.channel['id']}/stream-key/rotate", headers=creator.auth)
    assert r.status_code == 200, r.text
    base = f"srt://127.0.0.1:{stack.config.srt_port}"
    for url in (_local(old["srtUrl"], stack),  # the rotated-away key of a real channel
                f"{base}?streamid=live_not-a-real-key-{uuid.uuid4().hex}",
                # SRT Access Control syntax: the current key, but asking to play, not to publish
                f"{base}?streamid=%23!::r={r.json()['streamKey']},m=request"):
        publisher = _encoder(url, seconds=10)
        try:
            code = publisher.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"an SRT caller was let in: {url.split('streamid=')[0]}")
        finally:
            stderr = stop(publisher)
        assert code != 0
        assert b"reject" in stderr.lower(), stderr[-400:]
    assert creator.live_streams() == []
    assert gateway.get(f"/api/channels/{creator.channel['slug']}").json()["isLive"] is False
    assert_never_logged(stack, [old["streamKey"], r.json()["streamKey"]])
