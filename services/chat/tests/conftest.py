"""Chat tests run the real app in-process (ASGI) against real PostgreSQL, NATS (JetStream) and Valkey.

Access tokens come from servicekit.testing (`make_user`); the app trusts them through `jwks=`.
Replicas are driven by publishing real events into JetStream (`channel.created`, ...), exactly
as the channels/auth/streams outboxes do. Tests run with --import-mode=importlib, so helpers are
handed out as fixtures, not imported.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nats
import pytest
from chat_service.config import Settings
from chat_service.main import create_app
from contracts.catalog import subject_for
from contracts.envelope import Envelope, make_event
from contracts.events.channels import Channel as ChannelPayload
from contracts.events.channels import ChannelBan, ChannelFilters, ChannelFollow, ChannelModerator
from contracts.events.streams import Stream, StreamStatus
from servicekit.db import upgrade
from servicekit.testing import User
from sqlalchemy import text

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "chat_service" / "migrations"
PROBLEM_JSON = "application/problem+json"


def pytest_configure(config):
    config.addinivalue_line("markers", "settings(**overrides): settings of the app under test for one test")


@pytest.fixture
def chat_db_url(test_servers):
    url = test_servers.database_from_template("chat_template", lambda u: upgrade(MIGRATIONS, u))
    yield url
    test_servers.drop_database(url)


@pytest.fixture
def chat_settings(request, chat_db_url, nats_url_for, redis_url) -> Settings:
    marker = request.node.get_closest_marker("settings")
    values = {
        "database_url": chat_db_url, "nats_url": nats_url_for("chat"), "redis_url": redis_url,
        "outbox_poll_seconds": 0.2, "persister_fetch_timeout_seconds": 0.2,
    }
    return Settings(**{**values, **(marker.kwargs if marker else {})})


@pytest.fixture
async def chat_app(chat_settings, jwks):
    app = create_app(chat_settings, configure_process=False, jwks=jwks)
    async with app.router.lifespan_context(app):
        yield app
        async with app.state.runtime.db.session() as session:
            dead = (await session.exec(text("SELECT consumer, subject, error FROM dead_letters"))).all()
        assert dead == [], dead


@pytest.fixture
async def client(chat_app):
    transport = httpx.ASGITransport(app=chat_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as c:
        yield c


@pytest.fixture
def chat(chat_app):
    """The app's own ChatService (the one the edges use too)."""
    return chat_app.state.runtime.chat


@pytest.fixture
def db(chat_app):
    """`async with db() as session:` on the app's own database."""
    return chat_app.state.runtime.db.session


@pytest.fixture
async def nc(chat_app, nats_url):
    conn = await nats.connect(nats_url)
    yield conn
    await conn.close()


@pytest.fixture
def publish(nc):
    """publish(event_type, payload, source=...) -> the envelope, stored in JetStream (EVENTS)."""
    js = nc.jetstream()

    async def _publish(event_type: str, payload, *, source: str = "channels", time: datetime | None = None,
                       id: str | None = None) -> Envelope:
        env = make_event(event_type, payload, source=source, time=time, id=id)
        await js.publish(subject_for(event_type), env.to_json_bytes(), headers={"Nats-Msg-Id": env.id})
        return env

    return _publish


@pytest.fixture
def settled(nc, eventually):
    """Wait until the replica consumer acked everything published so far (replicas written)."""
    js = nc.jetstream()

    async def _settled() -> None:
        async def pending():
            try:
                info = await js.consumer_info("EVENTS", "chat-replicas")
            except Exception:
                return -1
            return info.num_pending + info.num_ack_pending

        await eventually(pending, lambda n: n == 0, what="the replica consumer to catch up")

    return _settled


@pytest.fixture
def make_channel(publish, chat, eventually):
    """make_channel(owner) -> channel id, once chat knows the channel."""

    async def _make(owner: User) -> str:
        channel_id = str(uuid.uuid4())
        await publish("channel.created", ChannelPayload(
            id=channel_id, slug=f"c-{channel_id[:8]}", name="Channel", description=None, category=None,
            tags=[], avatar=None, banner=None, is_public=True, owner_id=owner.id))

        async def known():
            try:
                await chat.resolve_room(channel_id=channel_id)
                return True
            except LookupError:
                return False

        await eventually(known, what=f"channel {channel_id} in chat's replica")
        return channel_id

    return _make


@pytest.fixture
def moderation_events(publish, settled):
    """Publish channels' moderation events; each call returns once the replica has it."""

    class _Events:
        async def filters(self, channel_id: str, *, banned_words=(), profanity_filter=False, slow_mode_seconds=0,
                          followers_only=False, subscribers_only=False):
            await publish("channel.filters_updated", ChannelFilters(
                channel_id=channel_id, banned_words=list(banned_words), profanity_filter=profanity_filter,
                slow_mode_seconds=slow_mode_seconds, followers_only=followers_only,
                subscribers_only=subscribers_only))
            await settled()

        async def subscription(self, channel_id: str, user_id: str, tier: str = "BASIC", *,
                               event: str = "subscription.created", status: str = "ACTIVE",
                               renewal_date: datetime | None = None, time: datetime | None = None):
            """A subscription event as channels publishes it (the whole subscription after the change)."""
            from contracts.events.subscriptions import Subscription, SubscriptionChanged
            fields = dict(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{channel_id}:{user_id}")), channel_id=channel_id,
                          user_id=user_id, tier=tier, status=status,
                          renewal_date=renewal_date or datetime.now(UTC) + timedelta(days=30))
            payload = (SubscriptionChanged(**fields, previous_tier=tier, previous_status="ACTIVE")
                       if event == "subscription.changed" else Subscription(**fields))
            await publish(event, payload, time=time)
            await settled()

        async def ban(self, channel_id: str, user_id: str, until: datetime | None = None):
            await publish("channel.user_banned", ChannelBan(channel_id=channel_id, user_id=user_id, until=until,
                                                            reason="test"))
            await settled()

        async def unban(self, channel_id: str, user_id: str):
            from contracts.events.channels import ChannelUnban
            await publish("channel.user_unbanned", ChannelUnban(channel_id=channel_id, user_id=user_id))
            await settled()

        async def moderator(self, channel_id: str, user_id: str, added: bool = True):
            await publish("channel.moderator_added" if added else "channel.moderator_removed",
                          ChannelModerator(channel_id=channel_id, user_id=user_id))
            await settled()

        async def follow(self, channel_id: str, user_id: str, followed: bool = True):
            await publish("channel.followed" if followed else "channel.unfollowed",
                          ChannelFollow(channel_id=channel_id, user_id=user_id))
            await settled()

        async def stream(self, channel_id: str, status: StreamStatus = StreamStatus.LIVE,
                         stream_id: str | None = None, start_time: datetime | None = None) -> str:
            """A stream event as the streams service publishes it; a stream that went LIVE
            carries its start (`start_time`, default now), one still OFFLINE none."""
            sid = stream_id or str(uuid.uuid4())
            now = datetime.now(UTC)
            started = None if status == StreamStatus.OFFLINE else (start_time or now)
            event = {StreamStatus.OFFLINE: "stream.created", StreamStatus.LIVE: "stream.started",
                     StreamStatus.ENDING: "stream.ended", StreamStatus.ARCHIVED: "stream.archived"}[status]
            await publish(event, Stream(
                id=sid, channel_id=channel_id, title="t", description=None, status=status,
                start_time=started, end_time=None, viewer_count=0, peak_viewers=0, duration=None, hls_url=None,
                thumbnail_url=None, vod_url=None, is_archived=False, created_at=now), source="streams")
            await settled()
            return sid

    return _Events()


@pytest.fixture
def persisted(db, eventually):
    """await persisted(n): wait until chat_messages holds n rows; returns them (by seq)."""

    async def _persisted(n: int, timeout: float = 10.0):
        async def rows():
            async with db() as session:
                return (await session.exec(text("SELECT id, seq, content, deleted_at FROM chat_messages "
                                                "ORDER BY seq"))).all()

        return await eventually(rows, lambda r: len(r) >= n, timeout=timeout, what=f"{n} persisted messages")

    return _persisted


