"""What the end-to-end tests do over and over, in one place: register a user and create a channel
through the gateway, go live with an ffmpeg test encoder, wait for something to happen with a
deadline and a failure that names it. Import it relatively (`from .helpers import ...`, from
web/ `from ..helpers import ...`): the tests run with --import-mode=importlib."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import nats

from contracts.envelope import Envelope, parse_event

PASSWORD = "s3cret-passw0rd"
PROBLEM_JSON = "application/problem+json"


def gateway_client(stack) -> httpx.Client:
    """A client of the stack's gateway; for fixtures of a wider scope than the `gateway` fixture."""
    return httpx.Client(base_url=f"http://127.0.0.1:{stack.config.gateway_port}", timeout=10)


def _shown(value: Any) -> str:
    if isinstance(value, httpx.Response):  # its repr has the status only
        return f"{value.status_code} {value.text[:300]!r}"
    return repr(value)


def until(what: str, fn: Callable[[], Any], predicate: Callable[[Any], Any] = bool, *, timeout: float = 15.0,
          every: float = 0.1):
    """`fn()` until `predicate` holds for what it returns -> that result. Fails naming `what` was
    awaited, for how long, and the last result (a response's status and body)."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if predicate(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {_shown(result)}")
        time.sleep(every)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(gateway: httpx.Client, prefix: str, *, email: str | None = None, **fields) -> dict:
    """A new user `<prefix>_<random>` registered through the gateway -> auth's answer (`user`,
    `accessToken`, `refreshToken`) with the user's `id`, `username`, `email`, `password` and `auth`
    headers."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    email = email or f"{name}@example.com"
    r = gateway.post("/api/auth/register", json={"email": email, "password": PASSWORD, "username": name, **fields})
    assert r.status_code == 201, r.text
    body = r.json()
    return {**body, "id": body["user"]["id"], "username": name, "email": email, "password": PASSWORD,
            "auth": bearer(body["accessToken"])}


def create_channel(gateway: httpx.Client, auth: dict, name: str | None = None, **fields) -> dict:
    """A channel of the user whose `auth` headers these are -> the channel as channels answers it."""
    r = gateway.post("/api/channels", json={"name": name or f"Channel {uuid.uuid4().hex[:8]}", **fields},
                     headers=auth)
    assert r.status_code == 201, r.text
    return r.json()


def stream_keys(gateway: httpx.Client, channel_id: str, auth: dict) -> dict:
    """The channel's stream-key answer: the key, the RTMP and SRT URLs."""
    r = gateway.get(f"/api/channels/{channel_id}/stream-key", headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def stream_key(gateway: httpx.Client, channel_id: str, auth: dict) -> str:
    return stream_keys(gateway, channel_id, auth)["streamKey"]


def go_live(gateway: httpx.Client, channel_id: str, auth: dict, title: str, *, timeout: float = 15.0) -> dict:
    """Go live -> the stream. Asked again until it answers 200: the streams service learns of a new
    channel from channel.created a moment after channels answered 201."""
    r = until(f"Go live on channel {channel_id} answering 200",
              lambda: gateway.post(f"/api/streams/{channel_id}/start", json={"title": title}, headers=auth),
              lambda r: r.status_code == 200, timeout=timeout, every=0.25)
    return r.json()


class Creator:
    """A registered user with a channel of their own, driven through the gateway."""

    def __init__(self, gateway: httpx.Client, prefix: str, channel_name: str | None = None):
        self.gateway = gateway
        self.user = register(gateway, prefix)
        self.auth = self.user["auth"]
        self.channel = create_channel(gateway, self.auth, channel_name or f"{prefix} {self.user['username']}")

    def keys(self) -> dict:
        return stream_keys(self.gateway, self.channel["id"], self.auth)

    def go_live(self, title: str = "Live", *, timeout: float = 15.0) -> str:
        """Go live -> the stream's id."""
        return go_live(self.gateway, self.channel["id"], self.auth, title, timeout=timeout)["id"]

    def stream(self, stream_id: str) -> dict:
        r = self.gateway.get(f"/api/streams/{stream_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def live_streams(self) -> list[dict]:
        r = self.gateway.get(f"/api/channels/{self.channel['id']}/streams", params={"status": "LIVE"})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def wait_live(self, stream_id: str | None = None, *, timeout: float = 30.0) -> dict:
        """The channel's LIVE stream (the given one, if any) once the encoder is connected."""
        if stream_id:
            return until(f"stream {stream_id} going LIVE", lambda: self.stream(stream_id),
                         lambda s: s["status"] == "LIVE", timeout=timeout, every=0.25)
        return until(f"a LIVE stream on channel {self.channel['id']}", self.live_streams, timeout=timeout,
                     every=0.25)[0]

    def wait_archived(self, stream_id: str, *, timeout: float = 60.0) -> dict:
        """The stream once it is ARCHIVED (its recording stored as a VOD)."""
        return until(f"stream {stream_id} ARCHIVED with a VOD", lambda: self.stream(stream_id),
                     lambda s: s["status"] == "ARCHIVED", timeout=timeout, every=0.5)


def rtmp_url(stack, key: str) -> str:
    """Where an encoder publishes with `key`: the stack's nginx-rtmp ingest."""
    return f"rtmp://127.0.0.1:{stack.config.rtmp_port}/live/{key}"


def encoder(url: str, *, seconds: int, size: str = "426x240", rate: int = 15, picture: str = "testsrc",
            audio: bool = True, fmt: str = "flv", extra: Sequence[str] = (),
            stderr: int = subprocess.DEVNULL) -> subprocess.Popen:
    """ffmpeg publishing a test pattern (`picture`: a lavfi source such as `color=c=red`) with a
    440 Hz tone (unless not `audio`) to `url` for `seconds`, a key frame every second (as OBS is told
    to). The caller stops it (`stop`) in a `finally`."""
    source = f"{picture}:size={size}:rate={rate}" if "=" in picture else f"{picture}=size={size}:rate={rate}"
    tone = ["-f", "lavfi", "-i", "sine=frequency=440"] if audio else []
    aac = ["-c:a", "aac"] if audio else []
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", source, *tone,
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(rate),
         *extra, *aac, "-f", fmt, url],
        stdout=subprocess.DEVNULL, stderr=stderr)


def stop(process: subprocess.Popen) -> bytes:
    """Kill the encoder if it still runs and reap it -> what it wrote to a piped stderr."""
    if process.poll() is None:
        process.kill()
    return process.communicate(timeout=10)[1] or b""


def first_variant_url(gateway: httpx.Client, master_url: str) -> str | None:
    """The first rendition's playlist URL from the master playlist, None while there is none."""
    master = gateway.get(master_url)
    uris = [line for line in master.text.splitlines() if line and not line.startswith("#")]
    if master.status_code != 200 or not uris:
        return None
    return uris[0] if uris[0].startswith("/") else f"{master_url.rsplit('/', 1)[0]}/{uris[0]}"


def segments_in_first_variant(gateway: httpx.Client, master_url: str) -> int:
    """How many whole segments the first rendition's playlist lists (0 while there is none)."""
    variant = first_variant_url(gateway, master_url)
    return gateway.get(variant).text.count("#EXTINF") if variant else 0


@contextlib.contextmanager
def live_stream(gateway: httpx.Client, stack, channel: dict, auth: dict, title: str, *, seconds: int,
                segments: int = 0) -> Iterator[dict]:
    """The channel goes live and a test encoder publishes to it for up to `seconds` -> the LIVE stream
    (its `hlsUrl`), once its first rendition lists `segments` whole segments. Ended, and the encoder
    stopped, on the way out."""
    key = stream_key(gateway, channel["id"], auth)
    stream_id = go_live(gateway, channel["id"], auth, title, timeout=30)["id"]
    publisher = encoder(rtmp_url(stack, key), seconds=seconds)
    try:
        live = until(f"stream {stream_id} going LIVE", lambda: gateway.get(f"/api/streams/{stream_id}").json(),
                     lambda s: s["status"] == "LIVE", timeout=30, every=0.25)
        if segments:
            until(f"{segments} segments in the live window", lambda: segments_in_first_variant(gateway, live["hlsUrl"]),
                  lambda n: n >= segments, timeout=60, every=0.5)
        yield live
    finally:
        gateway.post(f"/api/streams/{stream_id}/end", headers=auth)
        stop(publisher)


def fetched(gateway: httpx.Client, url: str, timeout: float) -> httpx.Response:
    """`url` once it answers 200 with a body (a playlist or segment the origin is still making)."""
    return until(f"{url} fetchable", lambda: gateway.get(url), lambda r: r.status_code == 200 and r.content,
                 timeout=timeout, every=0.25)


def vod_duration(gateway: httpx.Client, url: str) -> float:
    """The VOD at `url`, read by ffprobe: an MP4 with video and audio -> its length in seconds."""
    vod = gateway.get(url)
    assert vod.status_code == 200, vod.text[:200]
    assert vod.headers["content-type"].startswith("video/mp4"), vod.headers
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
                            "-of", "default=nw=1", "-"],
                           input=vod.content, capture_output=True, timeout=30, check=False)
    assert probe.returncode == 0, probe.stderr
    out = probe.stdout.decode()
    assert "codec_type=video" in out and "codec_type=audio" in out, (out, probe.stderr)
    return float(next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("duration=")))


async def connected_event(nats_url: str, channel_id: str, timeout: float) -> Envelope:
    """The channel's `media.ingest.connected` event (the stream also holds other tests' events)."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe("media.ingest.connected", ordered_consumer=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))
            except nats.errors.TimeoutError:
                raise AssertionError(f"no media.ingest.connected of {channel_id} within {timeout:g}s") from None
            event = parse_event(msg.data)
            if event.data.channel_id == channel_id:
                return event
    finally:
        await nc.close()


def problem(r: httpx.Response, status: int) -> dict:
    """An RFC 9457 answer with `status` -> its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == PROBLEM_JSON, r.headers
    body = r.json()
    assert body["status"] == status, body
    return body


def assert_never_logged(stack, secrets: Sequence[str]) -> None:
    """None of `secrets` (stream keys) in any log of the stack: the services', the ingest's, nginx's."""
    data = stack.config.data_dir
    logs = [*(data / "logs").glob("*.log"), *(data / "ingest" / "logs").glob("*.log"),
            *(data / "nginx" / "logs").glob("*.log")]
    assert logs
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a stream key leaked into {path}"


def report_a_message(gateway: httpx.Client, channel: dict, reporter: dict) -> None:
    """`reporter` (a `register` answer) writes "buy followers here" in the channel's chat and
    reports it as "spam link". Chat learns of a new channel from its channel.created event: the
    message is sent again until chat takes it."""
    sent = until(f"chat to take a message in channel {channel['id']}", lambda: gateway.post(
        "/api/messages", json={"channelId": channel["id"], "content": "buy followers here"},
        headers=reporter["auth"]), lambda r: r.status_code == 201, timeout=20, every=0.3)
    r = gateway.post("/api/reports", json={"channelId": channel["id"], "messageId": sent.json()["id"],
                                           "reason": "spam link"}, headers=reporter["auth"])
    assert r.status_code == 201, r.text
