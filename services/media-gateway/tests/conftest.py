"""Media gateway tests run the real app in-process (ASGI) against real PostgreSQL, NATS and Valkey.

`channels` stands in for the channels service on `channels.ingest.authorize`; `events` collects
every media.* event the outbox relay publishes to NATS.
"""

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
import nats
import orjson
import pytest
from sqlalchemy import text

from contracts.requests import IngestAuthorizeReply, IngestAuthorizeRequest
from contracts.subjects import CHANNELS_INGEST_AUTHORIZE
from servicekit.db import upgrade

from media_gateway.config import Settings
from media_gateway.main import create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "media_gateway" / "migrations"
MUX_SECRET = "mux-test-signing-secret"
CF_AUTH = "cf-live-input-shared-secret"
CF_SECRET = "cf-video-signing-secret"


@pytest.fixture
def media_db_url(test_servers):
    url = test_servers.database_from_template("media_gateway_template", lambda u: upgrade(MIGRATIONS, u))
    yield url
    test_servers.drop_database(url)


@pytest.fixture
def media_settings(media_db_url, nats_url_for, redis_url, tmp_path, object_store_env) -> Settings:
    for sub in ("hls", "recordings", "vod"):
        (tmp_path / sub).mkdir()
    return Settings(
        database_url=media_db_url, nats_url=nats_url_for("media-gateway"), redis_url=redis_url, data_dir=tmp_path,
        # VODs and thumbnails go to the real S3 server (SeaweedFS), as they go to R2 in production
        **{k.lower(): v for k, v in object_store_env.items()}, media_base_url="/media",
        outbox_poll_seconds=0.2, ingest_control_url=None, authorize_timeout_seconds=1.0,
        # no nginx-rtmp here; test_real_ingest and tests/ingest/test_source_pull turn the pull on
        ingest_source_pull=False, ingest_stats_interval_seconds=0, live_transcode=False,
        recording_poll_seconds=0.5, thumbnail_poll_seconds=0.2, thumbnail_retry_seconds=0.3,
        thumbnail_interval_seconds=60, mux_webhook_secret=MUX_SECRET, cloudflare_webhook_auth=CF_AUTH,
        cloudflare_webhook_secret=CF_SECRET,
        cloudflare_input_channels={"eb222fcca08eeb1ae84c981ebe8aeeb6": "chan-cf-mapped"},
    )


@pytest.fixture
def make_client(media_settings):
    """`async with make_client(**setting_overrides) as client:` a client on a fresh app."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def _make(**overrides):
        settings = media_settings.model_copy(update=overrides) if overrides else media_settings
        app = create_app(settings, configure_process=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://media-gateway.test") as c:
                c.app = app
                yield c

    return _make


@pytest.fixture
async def client(make_client):
    async with make_client() as c:
        yield c


@pytest.fixture
async def nc(nats_url):
    conn = await nats.connect(nats_url)
    yield conn
    await conn.close()


class EventLog:
    """Every media.* event seen on NATS, parsed."""

    def __init__(self):
        self.items: list[dict] = []
        self.raw: list[bytes] = []
        self._changed = asyncio.Event()

    async def on_message(self, msg) -> None:
        self.raw.append(msg.data)
        self.items.append(orjson.loads(msg.data))
        self._changed.set()

    def of_type(self, event_type: str) -> list[dict]:
        return [e for e in self.items if e["type"] == event_type]

    async def wait_for(self, event_type: str, where: Callable[[dict], bool] = lambda d: True,
                       timeout: float = 10.0) -> dict:
        async def _wait():
            while True:
                for event in self.of_type(event_type):
                    if where(event["data"]):
                        return event
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)


@pytest.fixture
async def events(nc):
    log = EventLog()
    sub = await nc.subscribe("media.>", cb=log.on_message)
    yield log
    await sub.unsubscribe()


class FakeChannels:
    """Answers channels.ingest.authorize from a key -> channel id map (None: refuse)."""

    def __init__(self):
        self.keys: dict[str, str] = {}
        self.calls: list[IngestAuthorizeRequest] = []
        self.delay = 0.0

    async def on_request(self, msg) -> None:
        request = IngestAuthorizeRequest.model_validate_json(msg.data)
        self.calls.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        channel = self.keys.get(request.stream_key.get_secret_value())
        reply = (IngestAuthorizeReply(allowed=True, channel_id=channel) if channel
                 else IngestAuthorizeReply(allowed=False, reason="unknown stream key"))
        await msg.respond(reply.to_json_bytes())


@pytest.fixture
async def channels(nc):
    fake = FakeChannels()
    sub = await nc.subscribe(CHANNELS_INGEST_AUTHORIZE, cb=fake.on_request)
    await nc.flush()
    yield fake
    await sub.unsubscribe()


def rtmp_form(call: str, name: str, *, clientid: str = "7", app: str = "live", addr: str = "203.0.113.9",
              extra: str = "", **fields: str) -> bytes:
    """A callback body exactly as nginx-rtmp writes it: its fields first, the encoder's args last."""
    head = {"app": app, "flashver": "FMLE/3.0 (compatible; obs-output module (libobs version 30.0.0))",
            "swfurl": "", "tcurl": f"rtmp://ingest.example/{app}", "pageurl": "", "addr": addr,
            "clientid": clientid, "call": call, "name": name, **fields}
    body = urlencode(head)
    return (body + ("&" + extra if extra else "")).encode()


@pytest.fixture
def rtmp_body():
    return rtmp_form


@pytest.fixture
def rtmp(client):
    async def _post(call: str, name: str, **kw) -> httpx.Response:
        path = {"publish": "publish", "publish_done": "publish_done", "update_publish": "update",
                "update_play": "update", "record_done": "record_done"}[call]
        return await client.post(f"/hooks/rtmp/{path}", content=rtmp_form(call, name, **kw),
                                 headers={"content-type": "application/x-www-form-urlencoded"})

    return _post


@pytest.fixture
def outbox_count(media_settings):
    """How many events of a type were staged (the outbox is what gets published)."""
    from servicekit.db import Database

    async def _count(event_type: str) -> int:
        db = Database(media_settings.database_url, pool_size=1)
        try:
            async with db.session() as session:
                return (await session.exec(text("SELECT count(*) FROM outbox WHERE event_type = :t")
                                              .bindparams(t=event_type))).scalar_one()
        finally:
            await db.dispose()

    return _count


@pytest.fixture
def ffmpeg_tools():
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg/ffprobe not installed")


@pytest.fixture
def make_flv(ffmpeg_tools):
    return make_test_flv


def make_test_flv(path: Path, seconds: int = 2) -> Path:
    """A real tiny FLV (H.264 + AAC), as an encoder would record it."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", "flv", str(path)],
                   check=True, capture_output=True)
    return path


@pytest.fixture
def stored(media_settings):
    """`await stored(key)`: the bytes the service put in the object store under `key`."""
    from servicekit.storage import ObjectStore

    store = ObjectStore.from_settings(media_settings)
    return store.get
