"""Fixtures for servicekit's tests: a database holding servicekit's own tables (outbox, inbox,
dead_letters), a JetStream context with the EVENTS stream, and small helpers.

Tests run with --import-mode=importlib, so helpers are handed out as fixtures, not imported.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import nats
import pytest
from contracts.envelope import make_event
from contracts.events.users import UserProfile
from contracts.subjects import EVENTS_STREAM
from servicekit.db import Database
from servicekit.messaging import ensure_streams
from sqlalchemy import text

TEMPLATE = "servicekit_template"


def _build_servicekit_tables(url: str) -> None:
    from servicekit.inbox import DeadLetter, InboxMessage
    from servicekit.outbox import OutboxMessage
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    engine = create_engine(url)
    try:
        # only servicekit's tables: other packages may have registered theirs on the same metadata
        SQLModel.metadata.create_all(
            engine, tables=[OutboxMessage.__table__, InboxMessage.__table__, DeadLetter.__table__])
    finally:
        engine.dispose()


@pytest.fixture
def kit_db_url(test_servers):
    url = test_servers.database_from_template(TEMPLATE, _build_servicekit_tables)
    yield url
    test_servers.drop_database(url)


@pytest.fixture
async def db(kit_db_url):
    database = Database(kit_db_url)
    yield database
    await database.dispose()


@pytest.fixture
async def nc(nats_url):
    client = await nats.connect(nats_url)
    yield client
    if not client.is_closed:
        await client.close()


@pytest.fixture
async def js(nc):
    context = nc.jetstream()
    await ensure_streams(context, [EVENTS_STREAM])
    return context


@pytest.fixture
def new_event():
    """A fresh `user.registered` envelope (random id)."""

    def _new_event(username: str | None = None):
        name = username or f"user_{uuid.uuid4().hex[:8]}"
        profile = UserProfile(user_id=str(uuid.uuid4()), username=name, display_name=name.title(), avatar=None)
        return make_event("user.registered", profile, source="auth", subject=profile.user_id)

    return _new_event


@pytest.fixture
def eventually():
    """`await eventually(check, timeout)`: poll an (async or sync) check until it returns truthy."""

    async def _eventually(check: Callable[[], Awaitable | object], timeout: float = 5.0,
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
def stream_messages(js):
    """All messages currently stored in a stream, in order (RawStreamMsg with .headers/.data)."""

    async def _messages(stream: str = EVENTS_STREAM.name):
        info = await js.stream_info(stream)
        out = []
        if info.state.messages == 0:
            return out
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            out.append(await js.get_msg(stream, seq))
        return out

    return _messages


@pytest.fixture
def sql(db):
    """Run one SQL statement in its own committed session; returns all rows."""

    async def _sql(statement: str, **params):
        async with db.session() as session:
            conn = await session.connection()
            result = await conn.execute(text(statement), params)
            rows = result.all() if result.returns_rows else []
            await session.commit()
            return rows

    return _sql
