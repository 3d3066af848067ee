"""Pytest fixtures that hand each test real NATS (JetStream), PostgreSQL and Valkey/Redis.

Where they come from, in order:
1. `TEST_NATS_URL`, `TEST_POSTGRES_DSN` (a superuser DSN; databases are created on it) and
   `TEST_REDIS_URL`, when set: servers someone else runs;
2. otherwise the same pip-shipped binaries `make run` uses, started once per test session on free
   ports and stopped at its end (no Docker: see docs/decisions.md, testcontainers).

`seaweedfs` is SeaweedFS's S3 gateway (one bucket, started once per session on first use);
`object_store_env` gives a test the services' object-store settings on its own prefix of it.

Isolation: every test that asks for a database gets a fresh one cloned from a migrated template;
`nats_url` deletes every JetStream stream before the test; `redis_url` flushes the database.

Credentials: the local servers require them, as in production. `nats_url` and `redis_url` are the
admin's (a test may publish and read anything); a service under test connects as its own NATS user
with `nats_url_for("<user>")` (contracts.access), so a subject missing from its permissions fails
its tests: a refused publish or subscription the server logs during a test fails that test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import NatsServer, Postgres, SeaweedFS, Valkey, provision_streams


@dataclass
class TestServers:
    nats_url: str
    postgres_dsn: str  # libpq DSN of a superuser on the server's `postgres` database
    redis_url: str
    nats: NatsServer | None = None  # the local server (None: one someone else runs, no users)
    _templates: set[str] = field(default_factory=set)

    def nats_url_for(self, user: str) -> str:
        """The URL a service connects with: its own NATS user on the local server."""
        return self.nats.url_for(user) if self.nats is not None else self.nats_url

    def _dsn_for(self, database: str) -> str:
        base, _, _ = self.postgres_dsn.rpartition("/")
        return f"{base}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        return self._dsn_for(database).replace("postgresql://", "postgresql+psycopg://", 1)

    def database_from_template(self, template: str, build: Callable[[str], None]) -> str:
        """A new database cloned from `template`, which `build(url)` migrates once per session."""
        with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
            if template not in self._templates:
                conn.execute(f'drop database if exists "{template}" with (force)')
                conn.execute(f'create database "{template}"')
                build(self.sqlalchemy_url(template))
                self._templates.add(template)
            name = f"t_{template}_{uuid.uuid4().hex[:12]}"
            conn.execute(f'create database "{name}" template "{template}"')
        return self.sqlalchemy_url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _from_env() -> TestServers | None:
    nats_url, pg, redis_url = (os.environ.get(k) for k in ("TEST_NATS_URL", "TEST_POSTGRES_DSN", "TEST_REDIS_URL"))
    if nats_url and pg and redis_url:
        return TestServers(nats_url, pg, redis_url)
    return None


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config) -> None:
    # CI or a developer stopping the run with SIGTERM: by default Python dies at once, atexit
    # handlers do not run and the servers below outlive the run. As an interrupt, pytest unwinds,
    # tears the session fixtures down and the servers stop.
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    except ValueError:  # not the main thread (pytest run embedded somewhere): leave it alone
        pass


@pytest.fixture(scope="session")
def test_servers() -> Iterator[TestServers]:
    external = _from_env()
    if external is not None:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="sp-test-"))
    sup = Supervisor(root / "logs")
    try:
        nats = NatsServer(free_port(), free_port(), root / "nats").start(sup, "test-nats")
        pg = Postgres(free_port(), root / "postgres", durable=False).start(sup, "test-postgres")
        valkey = Valkey(free_port(), root / "valkey", durable=False).start(sup, "test-valkey")
        yield TestServers(nats.url, pg.dsn(), valkey.url, nats=nats)
    finally:
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)


async def _delete_all_streams(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name is not None:  # a stream the server lists always has one
                await js.delete_stream(info.config.name)
    finally:
        await nc.close()


@pytest.fixture
def nats_url(test_servers: TestServers) -> Iterator[str]:
    asyncio.run(_delete_all_streams(test_servers.nats_url))
    since = test_servers.nats.permission_violations(0)[1] if test_servers.nats else 0
    yield test_servers.nats_url
    if test_servers.nats is not None:
        refused, _ = test_servers.nats.permission_violations(since)
        if refused:
            pytest.fail("NATS refused what a service did (add it to contracts.access if it is meant):\n"
                        + "\n".join(refused), pytrace=False)


@pytest.fixture
def nats_url_for(nats_url: str, test_servers: TestServers) -> Callable[[str], str]:
    """`nats_url_for("channels")`: the URL of a service's own NATS user. The streams (deleted by
    `nats_url`) are created again first, by the admin, as the channels service creates them in a
    deployment: a service logged in as any other user only waits for them (contracts.access)."""
    if test_servers.nats is not None:
        provision_streams(test_servers.nats_url)
    return test_servers.nats_url_for


@pytest.fixture
def redis_url(test_servers: TestServers) -> str:
    import redis

    client = redis.Redis.from_url(test_servers.redis_url)
    client.flushdb()
    client.close()
    return test_servers.redis_url


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """SeaweedFS (the S3 gateway) with the bucket `test-media`, for the whole test session."""
    root = Path(tempfile.mkdtemp(prefix="sp-s3-"))
    sup = Supervisor(root / "logs")
    try:
        yield SeaweedFS(free_port(), root, bucket="test-media").start(sup, "test-seaweedfs")
    finally:
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def object_store_env(seaweedfs: SeaweedFS) -> dict[str, str]:
    """OBJECT_STORE_URL and S3_* for a fresh prefix of the test bucket (tests do not see each
    other's objects); lower-case them for Settings(**...)."""
    return seaweedfs.settings_env(prefix=f"t-{uuid.uuid4().hex[:12]}")


def fail_on_nats_refusals(stack_fixture: str):
    """An autouse fixture for a conftest: a service NATS refuses a subject (its permissions in
    contracts.access lack something it does) fails the test during which it happened, instead of
    a timeout somewhere later. `stack_fixture` names the fixture holding the stack
    (anything with `nats_refusals()`); tests that do not use it are left alone."""

    @pytest.fixture(autouse=True)
    def _nats_refused_nothing(request):
        if stack_fixture not in request.fixturenames:
            yield
            return
        stack = request.getfixturevalue(stack_fixture)
        before = len(stack.nats_refusals())
        yield
        refused = stack.nats_refusals()[before:]
        if refused:
            pytest.fail("NATS refused a service:\n" + "\n".join(refused), pytrace=False)

    return _nats_refused_nothing
