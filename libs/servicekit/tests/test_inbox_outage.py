"""A PostgreSQL outage must not lose a domain event (issue 14, item 2).

The consumer runs against a private PostgreSQL (stopping the shared test server would break every
other test) and the shared JetStream. The outage is longer than the whole dead-letter budget the
consumer is configured with (max_deliver x (backoff + ack wait)), so a consumer that counted the
outage as handler failures would give up on events during it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
from contracts.subjects import EVENTS_STREAM
from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import Postgres
from servicekit.db import Database
from servicekit.inbox import ConsumerWorker
from sqlalchemy import text

STREAM = EVENTS_STREAM.name
NAME = "outage-consumer"


class PrivatePostgres:
    def __init__(self, root: Path):
        self.sup = Supervisor(root / "logs")
        self.server = Postgres(free_port(), root / "pg", durable=False)

    def start(self) -> None:
        self.server.start(self.sup, "outage-postgres")

    def stop(self) -> None:
        self.sup.stop(self.server.child)


@pytest.fixture
def private_postgres():
    root = Path(tempfile.mkdtemp(prefix="sp-outage-"))
    pg = PrivatePostgres(root)
    pg.start()
    from servicekit.inbox import DeadLetter, InboxMessage
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    engine = create_engine(pg.server.url("postgres"))
    SQLModel.metadata.create_all(engine, tables=[InboxMessage.__table__, DeadLetter.__table__])
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE effects (event_id text NOT NULL)"))
    engine.dispose()
    try:
        yield pg
    finally:
        pg.sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)


class FakeRuntime:  # what ConsumerWorker takes from a ServiceRuntime
    def __init__(self, db, js):
        self.db, self.js = db, js


async def test_no_event_is_lost_or_applied_twice_across_a_database_outage(private_postgres, js, new_event,
                                                                           eventually):
    db = Database(private_postgres.server.url("postgres"), pool_size=2)

    async def apply(session, event):
        await (await session.connection()).execute(
            text("INSERT INTO effects (event_id) VALUES (:e)"), {"e": event.id})

    # budget: 3 deliveries x (0.2 s backoff + 1 s ack wait) is well under the outage below
    worker = ConsumerWorker(NAME, ["user.>"], apply, stream=STREAM, max_deliver=3,
                            backoff_seconds=(0.2,), ack_wait_seconds=1, batch=5,
                            outage_probe_seconds=(0.2, 0.5))
    task = asyncio.create_task(worker(FakeRuntime(db, js)))
    published = []

    async def publish(n: int) -> None:
        for _ in range(n):
            event = new_event()
            await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
            published.append(event.id)

    async def applied() -> list[str]:
        async with db.session() as session:
            return [r[0] for r in (await session.execute(text("SELECT event_id FROM effects"))).all()]

    try:
        await publish(5)
        await eventually(lambda: _count(applied, 5), timeout=10, message="first events applied")

        private_postgres.stop()
        await publish(10)  # arrive while the database is down
        await asyncio.sleep(8)  # several times the dead-letter budget
        await publish(5)
        private_postgres.start()

        await eventually(lambda: _count(applied, 20), timeout=30, message="every event applied")
        await eventually(lambda: _settled(js), timeout=10, message="consumer settled")
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
        await db.dispose()

    rows = await applied()
    assert sorted(rows) == sorted(published), "each event applied exactly once"
    engine_db = Database(private_postgres.server.url("postgres"))
    try:
        async with engine_db.session() as session:
            dead = (await session.execute(text("SELECT count(*) FROM dead_letters"))).scalar_one()
    finally:
        await engine_db.dispose()
    assert dead == 0


async def _count(applied, n: int) -> bool:
    return len(await applied()) >= n


async def _settled(js) -> bool:
    info = await js.consumer_info(STREAM, NAME)
    return info.num_pending == 0 and info.num_ack_pending == 0
