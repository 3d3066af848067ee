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

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                                  reason="needs ffmpeg and ffprobe")]


class Creator:
    def __init__(self, gateway: httpx.Client):
        self.gateway = gateway
        name = f"srt_{uuid.uuid4().hex[:8]}"
        r = gateway.post("/api/auth/register", json={"email": f"{name}@example.com", "password": "s3cret-passw0rd",
                                                     "username": name})
        assert r.status_code == 201, r.text
        self.auth = {"Authorization": f"Bearer {r.json()['accessToken']}"}
        r = gateway.post("/api/channels", json={"name": f"SRT {name}"}, headers=self.auth)
        assert r.status_code == 201, r.text
        self.channel = r.json()

    def keys(self) -> dict:
        r = self.gateway.get(f"/api/channels/{self.channel['id']}/stream-key", headers=self.auth)
        assert r.status_code == 200, r.text
        return r.json()

    def go_live(self) -> str:
        def start():
            r = self.gateway.post(f"/api/streams/{self.channel['id']}/start", json={"title": "Over SRT"},
                                  headers=self.auth)
            return r if r.status_code == 200 else None
        return poll("Go live answering 200", start, 15).json()["id"]

    def stream(self, stream_id: str) -> dict:
        r = self.gateway.get(f"/api/streams/{stream_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def live_streams(self) -> list[dict]:
        r = self.gateway.get(f"/api/channels/{self.channel['id']}/streams", params={"status": "LIVE"})
        assert r.status_code == 200, r.text
        return r.json()["items"]


def _local(srt_url: str, stack) -> str:
    """The public srtUrl, aimed at this machine's listener (the stack's public host is `localhost`)."""
    parts = urlsplit(srt_url)
    assert parts.scheme == "srt" and parts.port == stack.config.srt_port, srt_url
    return parts._replace(netloc=f"127.0.0.1:{parts.port}").geturl()


def _encoder(url: str, seconds: int = 60) -> subprocess.Popen:
    """ffmpeg as an SRT caller: H.264 + AAC in MPEG-TS, a key frame every second (as OBS sends)."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc=size=426x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
         "-c:a", "aac", "-f", "mpegts", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop(encoder: subprocess.Popen) -> bytes:
    if encoder.poll() is None:
        encoder.kill()
    return encoder.communicate(timeout=10)[1] or b""


def _keys_never_logged(stack, keys: list[str]) -> None:
    data = stack.config.data_dir
    logs = [*(data / "logs").glob("*.log"), *(data / "ingest" / "logs").glob("*.log"),
            *(data / "nginx" / "logs").glob("*.log")]
    assert logs
    for path in logs:
        text = path.read_text(errors="replace")
        for key in keys:
            assert key not in text, f"a stream key leaked into {path}"


def _first_variant_segment(gateway: httpx.Client, master_url: str) -> bytes | None:
    master = gateway.get(master_url)
    uris = [line for line in master.text.splitlines() if line and not line.startswith("#")]
    if master.status_code != 200 or not uris:
        return None
    variant = uris[0] if uris[0].startswith("/") else f"{master_url.rsplit('/', 1)[0]}/{uris[0]}"
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
    creator = Creator(gateway)
    keys = creator.keys()
    url = urlsplit(keys["srtUrl"])
    assert url.scheme == "srt" and url.port == stack.config.srt_port
    assert parse_qs(url.query) == {"streamid": [keys["streamKey"]]}
    rotated = gateway.post(f"/api/channels/{creator.channel['id']}/stream-key/rotate", headers=creator.auth).json()
    assert parse_qs(urlsplit(rotated["srtUrl"]).query)["streamid"] == [rotated["streamKey"]] != [keys["streamKey"]]


def test_an_srt_publish_goes_live_plays_and_ends_as_a_vod(gateway, stack):
    creator = Creator(gateway)
    keys = creator.keys()
    stream_id = creator.go_live()
    encoder = _encoder(_local(keys["srtUrl"], stack))
    try:
        live = poll("the stream going LIVE over SRT", lambda: (s := creator.stream(stream_id))["status"] == "LIVE" and s)
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
            encoder.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail("the ended stream's SRT encoder is still connected")
    finally:
        _stop(encoder)

    archived = poll("ARCHIVED with a VOD", lambda: (s := creator.stream(stream_id))["status"] == "ARCHIVED" and s,
                    timeout=60, every=0.5)
    assert archived["vodUrl"], archived
    vod = gateway.get(archived["vodUrl"])
    assert vod.status_code == 200 and vod.headers["content-type"].startswith("video/mp4")
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
                            "-of", "default=nw=1", "-"], input=vod.content, capture_output=True, timeout=30, check=False)
    out = probe.stdout.decode()
    assert "codec_type=video" in out and "codec_type=audio" in out, (out, probe.stderr)
    assert float(next(x.split("=", 1)[1] for x in out.splitlines() if x.startswith("duration="))) >= 3, out
    _keys_never_logged(stack, [keys["streamKey"]])


def test_a_wrong_key_or_a_non_publish_streamid_is_rejected_in_the_handshake(gateway, stack):
    creator = Creator(gateway)
    old = creator.keys()
    r = gateway.post(f"/api/channels/{creator.channel['id']}/stream-key/rotate", headers=creator.auth)
    assert r.status_code == 200, r.text
    base = f"srt://127.0.0.1:{stack.config.srt_port}"
    for url in (_local(old["srtUrl"], stack),  # the rotated-away key of a real channel
                f"{base}?streamid=live_not-a-real-key-{uuid.uuid4().hex}",
                # SRT Access Control syntax: the current key, but asking to play, not to publish
                f"{base}?streamid=%23!::r={r.json()['streamKey']},m=request"):
        encoder = _encoder(url, seconds=10)
        try:
            code = encoder.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"an SRT caller was let in: {url.split('streamid=')[0]}")
        finally:
            stderr = _stop(encoder)
        assert code != 0
        assert b"reject" in stderr.lower(), stderr[-400:]
    assert creator.live_streams() == []
    assert gateway.get(f"/api/channels/{creator.channel['slug']}").json()["isLive"] is False
    _keys_never_logged(stack, [old["streamKey"], r.json()["streamKey"]])
