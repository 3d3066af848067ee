"""Channels tests run the real app in-process (ASGI) against real PostgreSQL, NATS and Valkey.

Access tokens are minted here with a throwaway Ed25519 key; the app verifies them through a
`jwks=` fetcher that serves that key's JWK, exactly as it would verify auth's tokens.
Tests run with --import-mode=importlib, so helpers are handed out as fixtures, not imported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import nats
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from contracts.envelope import make_event, parse_event
from contracts.subjects import EVENTS_STREAM
from servicekit.db import Database, upgrade
from servicekit.testing import User

from channels_service.config import Settings
from channels_service.main import create_app

# a fresh Fernet key per run, as devstack gives `make run` and the e2e stack one
SIMULCAST_KEY = Fernet.generate_key().decode()
MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "channels_service" / "migrations"


# ---- tokens ----------------------------------------------------------------------------------

# ---- the app ---------------------------------------------------------------------------------

@pytest.fixture
def channels_db_url(test_servers):
    url = test_servers.database_from_template("channels_template", lambda u: upgrade(MIGRATIONS, u))
    yield url
    test_servers.drop_database(url)


@pytest.fixture
def channels_settings(channels_db_url, nats_url_for, redis_url, object_store_env) -> Settings:
    return Settings(
        database_url=channels_db_url, nats_url=nats_url_for("channels"), redis_url=redis_url,
        # banners go to the real S3 server (SeaweedFS), as they go to R2 in production
        **{k.lower(): v for k, v in object_store_env.items()}, media_base_url="/media",
        outbox_poll_seconds=0.2, rtmp_url="rtmp://ingest.test:1935/live", srt_url="srt://ingest.test:9000",
        simulcast_encryption_key=SIMULCAST_KEY,
    )


@pytest.fixture
def payment_provider():
    """The subscriptions' payment hook the app gets; None: the default (NoPayments)."""
    return None


@pytest.fixture
async def channels_app(channels_settings, jwks, payment_provider):
    app = create_app(channels_settings, configure_process=False, jwks=jwks, payment_provider=payment_provider)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.ingest_authorizer.ready.wait(), 5)
        await asyncio.wait_for(app.state.channel_lookup.ready.wait(), 5)
        await asyncio.wait_for(app.state.viewer_counts.ready.wait(), 5)
        yield app


@pytest.fixture
async def client(channels_app):
    transport = httpx.ASGITransport(app=channels_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://channels.test") as c:
        yield c


@pytest.fixture
def create_channel(client):
    """Create a channel for `owner` and return its JSON."""
    counter = iter(range(1_000_000))

    async def _create(owner: User, name: str | None = None, **fields) -> dict:
        body = {"name": name or f"Channel {next(counter)} of {owner.username}", **fields}
        r = await client.post("/api/channels", json=body, headers=owner.headers)
        assert r.status_code == 201, r.text
        return r.json()

    return _create


@pytest.fixture
def stream_key(client):
    async def _key(owner: User, channel_id: str) -> str:
        r = await client.get(f"/api/channels/{channel_id}/stream-key", headers=owner.headers)
        assert r.status_code == 200, r.text
        return r.json()["streamKey"]

    return _key


def assert_problem(r: httpx.Response, status: int) -> dict:
    """An RFC 9457 answer with the given status: the four members, and field `errors` on 422."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json", r.headers
    body = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    assert "Traceback" not in r.text
    if status == 422:
        assert isinstance(body.get("errors"), list) and body["errors"], body
    return body


@pytest.fixture
def problem():
    return assert_problem


# ---- NATS, events, database ------------------------------------------------------------------

@pytest.fixture
async def nc(channels_app, nats_url):
    # the admin: tests publish what other services would and read what channels published
    client = await nats.connect(nats_url)
    yield client
    if not client.is_closed:
        await client.close()


@pytest.fixture
def js(nc):
    return nc.jetstream()


@pytest.fixture
def published(js):
    """All events currently in the EVENTS stream, parsed, optionally only of one type."""

    async def _published(event_type: str | None = None, *, raw: bool = False):
        info = await js.stream_info(EVENTS_STREAM.name)
        out = []
        if info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(EVENTS_STREAM.name, seq)
                out.append(msg if raw else parse_event(msg.data))
        if event_type and not raw:
            out = [e for e in out if e.type == event_type]
        return out

    return _published


@pytest.fixture
def send_event(js):
    """Publish an event into JetStream as another service's outbox relay would."""

    async def _send(event_type: str, data, *, source: str = "test", envelope=None, dedup: bool = True,
                    subject: str | None = None):
        event = envelope or make_event(event_type, data, source=source)
        headers = {"Nats-Msg-Id": event.id} if dedup else None
        await js.publish(subject or event_type, event.to_json_bytes(), headers=headers)
        return event

    return _send


@pytest.fixture
def eventually():
    """`await eventually(check, timeout)`: poll an (async or sync) check until it returns truthy."""

    async def _eventually(check: Callable[[], Awaitable | object], timeout: float = 10.0,
                          interval: float = 0.05, message: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{message} not reached within {timeout}s")
            await asyncio.sleep(interval)

    return _eventually


@pytest.fixture
async def sql(channels_db_url):
    """Run one SQL statement in its own committed session; returns all rows."""
    db = Database(channels_db_url, pool_size=1)

    async def _sql(statement: str, **params):
        async with db.session() as session:
            conn = await session.connection()
            result = await conn.execute(text(statement), params)
            rows = result.all() if result.returns_rows else []
            await session.commit()
            return rows

    yield _sql
    await db.dispose()
