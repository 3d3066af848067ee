"""Streams tests run the real app in-process (ASGI) against real PostgreSQL and NATS (JetStream).

Access tokens are minted with a throwaway Ed25519 key that the app trusts through `jwks=`, as it
trusts auth's keys in production. Consumers are driven by publishing real events into JetStream,
and checked by polling the API (bounded waits). Tests run with --import-mode=importlib, so helpers
are handed out as fixtures, not imported.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import text

from contracts.catalog import subject_for
from contracts.envelope import Envelope, make_event, parse_event
from contracts.events.channels import Channel as ChannelPayload
from contracts.events.chat import ChatPresence
from contracts.events.media import (IngestConnected, IngestDisconnected, IngestErrored, MediaProvider,
                                    RecordingReady, ThumbnailUpdated)
from contracts.subjects import EVENTS_STREAM
from servicekit.db import upgrade
from servicekit.testing import User

from streams_service.config import Settings
from streams_service.main import create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "streams_service" / "migrations"
PROBLEM_JSON = "application/problem+json"


# ---- tokens ----------------------------------------------------------------------------------

# ---- the app ---------------------------------------------------------------------------------

@pytest.fixture
def streams_db_url(test_servers):
    url = test_servers.database_from_template("streams_template", lambda u: upgrade(MIGRATIONS, u))
    yield url
    test_servers.drop_database(url)


def pytest_configure(config):
    config.addinivalue_line("markers", "settings(**overrides): settings of the app under test for one test")


@pytest.fixture
def streams_settings(request, streams_db_url, nats_url_for, redis_url, object_store_env) -> Settings:
    marker = request.node.get_closest_marker("settings")
    values = {
        "database_url": streams_db_url, "nats_url": nats_url_for("streams"), "redis_url": redis_url,
        "outbox_poll_seconds": 0.2,
        # short windows keep the suite fast; the defaults are checked in test_lifecycle
        "reconnect_window_seconds": 1.0, "sweep_interval_seconds": 0.1, "presence_ttl_seconds": 1.0,
        "viewers_tick_seconds": 0.05, "clip_poll_seconds": 0.2,
        **{k.lower(): v for k, v in object_store_env.items()},
    }
    return Settings(**{**values, **(marker.kwargs if marker else {})})


@pytest.fixture
async def streams_app(streams_settings, jwks):
    app = create_app(streams_settings, configure_process=False, jwks=jwks)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.viewers.ready.wait(), 5)
        yield app
        # every event a test fed in was handled: none gave up after retries
        async with app.state.runtime.db.session() as session:
            dead = (await session.exec(text("SELECT consumer, subject, error FROM dead_letters"))).all()
        assert dead == [], dead


@pytest.fixture
async def client(streams_app):
    transport = httpx.ASGITransport(app=streams_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://streams.test") as c:
        yield c


@pytest.fixture
def db(streams_app):
    """`async with db() as session:` on the app's own database."""
    return streams_app.state.runtime.db.session


# ---- NATS: publishing events in, reading events out -------------------------------------------

@pytest.fixture
async def nc(streams_app, nats_url):
    conn = await nats.connect(nats_url)
    yield conn
    await conn.close()


@pytest.fixture
def publish(nc):
    """publish(event_type, payload, id=..., time=...) -> the envelope, stored in JetStream."""
    js = nc.jetstream()

    async def _publish(event_type: str, payload, *, id: str | None = None, time: datetime | None = None,
                       source: str = "test") -> Envelope:
        env = make_event(event_type, payload, source=source, id=id, time=time)
        await js.publish(subject_for(event_type), env.to_json_bytes(), headers={"Nats-Msg-Id": env.id})
        return env

    return _publish


@pytest.fixture
def publish_raw(nc):
    """Publish an envelope again (same id) bypassing JetStream's dedup window: what a redelivery
    or a republish after the window looks like to the consumer."""
    js = nc.jetstream()

    async def _publish(env: Envelope) -> None:
        await js.publish(subject_for(env.type), env.to_json_bytes())

    return _publish


@dataclass
class Published:
    subject: str
    event: Envelope


class EventLog:
    """The events in stream EVENTS (read by sequence), optionally only those a service published."""

    def __init__(self, js):
        self.js = js

    async def all(self, source: str | None = "streams") -> list[Published]:
        try:
            info = await self.js.stream_info(EVENTS_STREAM.name)
        except NotFoundError:
            return []
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await self.js.get_msg(EVENTS_STREAM.name, seq)
            except NotFoundError:
                continue
            event = parse_event(msg.data)
            if source is None or event.source == source:
                out.append(Published(msg.subject, event))
        return out

    async def of_type(self, event_type: str) -> list[Envelope]:
        return [p.event for p in await self.all() if p.event.type == event_type]

    async def wait_for(self, predicate: Callable[[list[Published]], bool], timeout: float = 10.0,
                       what: str = "events") -> list[Published]:
        deadline = time.monotonic() + timeout
        while True:
            published = await self.all()
            if predicate(published):
                return published
            if time.monotonic() > deadline:
                seen = [(p.subject, p.event.data) for p in published]
                raise AssertionError(f"timed out waiting for {what}: {seen}")
            await asyncio.sleep(0.05)


@pytest.fixture
def events(nc):
    return EventLog(nc.jetstream())


# ---- domain helpers ----------------------------------------------------------------------------

@pytest.fixture
def make_channel(publish, db, eventually):
    """make_channel(owner, name=...) -> channel id, after `channel.created` reached the projection."""
    counter = iter(range(1_000_000))

    async def _make(owner: User, name: str | None = None, *, wait: bool = True) -> str:
        n = next(counter)
        channel_id = str(uuid.uuid4())
        await publish("channel.created", ChannelPayload(
            id=channel_id, slug=f"chan-{n}-{channel_id[:6]}", name=name or f"Channel {n}", description=None,
            category=None, tags=[], avatar=None, banner=None, is_public=True, owner_id=owner.id),
            source="channels")
        if wait:
            from streams_service.channels.models import Channel

            async def known():
                async with db() as session:
                    return await session.get(Channel, channel_id)

            await eventually(known, what=f"channel {channel_id} in the projection")
        return channel_id

    return _make


def _at(at: datetime | None, offset: float = 0.0) -> datetime:
    return (at or datetime.now(UTC)) + timedelta(seconds=offset)


@dataclass
class Ingest:
    """Publishes what the media gateway would for one channel."""

    publish: Callable
    channel_id: str

    async def connect(self, session_id: str | None = None, *, at: datetime | None = None,
                      hls_url: str | None = "auto", provider: MediaProvider = MediaProvider.LOCAL) -> str:
        sid = session_id or uuid.uuid4().hex
        url = f"http://localhost:8080/hls/{sid}/index.m3u8" if hls_url == "auto" else hls_url
        await self.publish("media.ingest.connected", IngestConnected(
            channel_id=self.channel_id, provider=provider, ingest_session_id=sid, at=_at(at), hls_url=url),
            source="media-gateway")
        return sid

    async def disconnect(self, session_id: str, *, at: datetime | None = None, errored: bool = False):
        common = dict(channel_id=self.channel_id, provider=MediaProvider.LOCAL, ingest_session_id=session_id,
                      at=_at(at))
        if errored:
            return await self.publish("media.ingest.errored", IngestErrored(**common, error="boom"),
                                      source="media-gateway")
        return await self.publish("media.ingest.disconnected", IngestDisconnected(**common),
                                  source="media-gateway")

    async def recording(self, session_id: str, vod_url: str | None = None, duration: float = 12.0, **kw):
        return await self.publish("media.recording.ready", RecordingReady(
            channel_id=self.channel_id, ingest_session_id=session_id,
            vod_url=vod_url if vod_url is not None else f"http://localhost:8080/vod/{session_id}.mp4",
            duration_seconds=duration), source="media-gateway", **kw)

    async def thumbnail(self, url: str, **kw):
        return await self.publish("media.thumbnail.updated",
                                  ThumbnailUpdated(channel_id=self.channel_id, url=url),
                                  source="media-gateway", **kw)


@pytest.fixture
def ingest(publish):
    return lambda channel_id: Ingest(publish, channel_id)


@pytest.fixture
def presence(nc):
    """presence(channel_id, edge_id, connections, at=None): one chat edge's snapshot (core NATS)."""

    async def _presence(channel_id: str, edge_id: str, connections: int, *, at: datetime | None = None,
                        users: int | None = None) -> None:
        payload = ChatPresence(edge_id=edge_id, channel_id=channel_id, connections=connections,
                               users=connections if users is None else users, at=_at(at))
        env = make_event("chat.presence", payload, source="chat")
        await nc.publish(subject_for("chat.presence", channelId=channel_id), env.to_json_bytes())
        await nc.flush()

    return _presence


@pytest.fixture
def get_stream(client):
    async def _get(stream_id: str) -> dict:
        r = await client.get(f"/api/streams/{stream_id}")
        assert r.status_code == 200, r.text
        return r.json()

    return _get


@pytest.fixture
def live_stream_of(client, eventually):
    """Wait until the channel has a LIVE stream (optionally not `other_than`); returns it."""

    async def _live(channel_id: str, *, other_than: str | None = None, timeout: float = 10.0) -> dict:
        async def fetch():
            r = await client.get(f"/api/channels/{channel_id}/streams", params={"status": "LIVE"})
            return r.json()["items"] if r.status_code == 200 else []

        items = await eventually(fetch, lambda items: any(s["id"] != other_than for s in items),
                                 timeout=timeout, what=f"a LIVE stream on {channel_id}")
        return next(s for s in items if s["id"] != other_than)

    return _live


@pytest.fixture
def wait_status(get_stream, eventually):
    async def _wait(stream_id: str, status: str, timeout: float = 10.0) -> dict:
        return await eventually(lambda: get_stream(stream_id), lambda s: s["status"] == status,
                                timeout=timeout, what=f"stream {stream_id} to be {status}")

    return _wait


@pytest.fixture
def settled(nc, eventually):
    """Wait until the service's consumers have handled (acked) everything published so far."""
    js = nc.jetstream()

    async def _settled(*consumers: str) -> None:
        names = consumers or ("streams-media", "streams-channels")

        async def pending():
            total = 0
            for name in names:
                try:
                    info = await js.consumer_info(EVENTS_STREAM.name, name)
                except NotFoundError:
                    return -1
                total += info.num_pending + info.num_ack_pending
            return total

        await eventually(pending, lambda n: n == 0, what=f"consumers {names} to catch up")

    return _settled


@pytest.fixture
def outbox_drained(db, eventually):
    """Wait until everything the service staged so far is in JetStream (no unpublished outbox row).
    The events of one transaction are relayed in no particular order: wait for this, not for one
    of them, before looking at all of them."""

    async def _drained() -> None:
        async def unpublished():
            async with db() as session:
                return (await session.exec(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
                        ).scalar_one()

        await eventually(unpublished, lambda n: n == 0, what="the outbox to be relayed")

    return _drained
