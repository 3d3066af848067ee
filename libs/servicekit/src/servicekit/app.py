"""One bootstrap for every service: connections, background workers and the FastAPI app.

`ServiceRuntime` owns what a process connects to (PostgreSQL, NATS/JetStream, Redis, object store)
and the workers it runs (outbox relay, consumers). Tests build the same runtime against the test
servers, so nothing is wired differently in production.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from redis.asyncio import Redis

from servicekit.db import Database
from servicekit.errortracking import setup_error_tracking
from servicekit.logging import configure_logging
from servicekit.messaging import connect, ensure_streams, may_configure
from servicekit.observability import NotReady, ReadinessCheck, health_router, instrument, setup_tracing
from servicekit.outbox import OutboxRelay
from servicekit.problems import PROBLEM_SCHEMA, install_problem_handlers
from servicekit.retention import Prune, RetentionJob, Sweep, dead_letters_prune, inbox_prune
from servicekit.security import JwtVerifier, KeyFetcher, remote_jwks
from servicekit.settings import ServiceSettings
from servicekit.storage import ObjectStore
from servicekit.supervision import Supervised

log = logging.getLogger("servicekit.app")

Worker = Callable[["ServiceRuntime"], Awaitable[None]]


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, *, streams: Sequence = (), buckets: Sequence = (),
                 uses_db: bool = True, uses_redis: bool = True, uses_store: bool = False,
                 jwks: KeyFetcher | None = None, relay_outbox: bool = True):
        self.settings = settings
        self.streams = list(streams)
        self.buckets = list(buckets)
        # whether this process's NATS user creates and updates streams and buckets, or waits for
        # them (contracts.access: one user does, since a stream's subjects decide what it captures)
        self.configures_streams = may_configure(settings.nats_url)
        self.uses_db = uses_db
        self.uses_redis = uses_redis
        self.uses_store = uses_store
        self.relay_outbox = relay_outbox and uses_db
        self._jwks = jwks
        self.db: Database | None = None
        self.nats: NATS | None = None
        self.js: JetStreamContext | None = None
        self.redis: Redis | None = None
        self.store: ObjectStore | None = None
        self.verifier: JwtVerifier | None = None
        self.relay: OutboxRelay | None = None
        self._workers: list[Worker] = []
        # retention rules: the shared ones here, a service adds its own with add_prune
        self.prunes: list[Prune] = ([inbox_prune(settings.inbox_retention_days),
                                     dead_letters_prune(settings.dead_letters_retention_days)]
                                    if uses_db else [])
        self.sweeps: list[Sweep] = []
        self.retention: RetentionJob | None = None
        self._tasks: list[asyncio.Task] = []
        self.supervised: list[Supervised] = []
        self._stoppers: list[Callable[[], Any]] = []

    def add_worker(self, worker: Worker, stop: Callable[[], Any] | None = None) -> None:
        """Run `worker(runtime)` for the life of the process (consumers, periodic jobs), supervised:
        restarted with backoff when it raises, and reported in the log and /readyz."""
        self._workers.append(worker)
        if stop is not None:
            self._stoppers.append(stop)

    def add_prune(self, prune: Prune) -> None:
        """Delete old rows of one of this service's tables in the runtime's retention job."""
        self.prunes.append(prune)

    def add_sweep(self, sweep: Sweep) -> None:
        """Remove expired files or stored objects in the runtime's retention job (after the rows)."""
        self.sweeps.append(sweep)

    def make_verifier(self) -> JwtVerifier:
        s = self.settings
        return JwtVerifier(self._jwks or remote_jwks(s.jwks_url), issuer=s.jwt_issuer,
                           audience=s.jwt_audience, algorithms=tuple(s.jwt_algorithms),
                           cache_seconds=s.jwks_cache_seconds,
                           refetch_cooldown_seconds=s.jwks_refetch_cooldown_seconds)

    async def start(self) -> None:
        s = self.settings
        if self.uses_db:
            self.db = Database(s.database_url, pool_size=s.database_pool_size)
        self.nats = await connect(s.nats_url, name=s.service_name)
        self.js = self.nats.jetstream()
        if self.streams or self.buckets:
            await ensure_streams(self.js, self.streams, replicas=s.jetstream_replicas, buckets=self.buckets,
                                 configure=self.configures_streams)
        if self.uses_redis:
            self.redis = Redis.from_url(s.redis_url, decode_responses=False)
        if self.uses_store:
            self.store = ObjectStore.from_settings(s)
            await self.store.check()
        self.verifier = self.make_verifier()
        if self.relay_outbox:
            assert self.db is not None  # relay_outbox implies uses_db (__init__)
            self.relay = OutboxRelay(self.db, self.js, batch_size=s.outbox_batch_size,
                                     poll_seconds=s.outbox_poll_seconds,
                                     listen_poll_seconds=s.outbox_listen_poll_seconds,
                                     max_attempts=s.outbox_max_attempts)
            self._supervise("outbox-relay", self.relay.run)
        if self.db is not None and (self.prunes or self.sweeps):
            self.retention = RetentionJob(self.db, self.prunes, interval_seconds=s.retention_interval_seconds,
                                          batch_size=s.retention_batch_size, sweeps=self.sweeps)
            self._supervise("retention", self.retention.run)
        for worker in self._workers:
            self._supervise(getattr(worker, "__name__", "worker"), functools.partial(worker, self))

    def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        s = self.settings
        task = Supervised(name, run, backoff_seconds=s.task_restart_backoff_seconds,
                          max_backoff_seconds=s.task_restart_max_backoff_seconds,
                          healthy_after_seconds=s.task_healthy_after_seconds)
        self.supervised.append(task)
        self._tasks.append(asyncio.create_task(task(), name=name))

    async def stop(self) -> None:
        for task in self.supervised:
            task.stop()
        if self.relay:
            self.relay.stop()
        if self.retention:
            self.retention.stop()
        for stop in self._stoppers:
            stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            for late in pending:
                late.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
            self.supervised.clear()
        if self.verifier is not None:
            await self.verifier.aclose()
        if self.nats is not None and not self.nats.is_closed:
            try:
                await self.nats.drain()
            except Exception:
                await self.nats.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.db is not None:
            await self.db.dispose()

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {}
        if self.uses_db:
            async def database_ok() -> bool:
                return self.db is not None and await self.db.ping()

            checks["database"] = database_ok

        async def nats_ok() -> bool:
            return self.nats is not None and self.nats.is_connected

        checks["nats"] = nats_ok
        if self.uses_redis:
            async def redis_ok() -> bool:
                return self.redis is not None and await self.redis.ping()

            checks["redis"] = redis_ok

        async def tasks_ok() -> bool:
            problems = [p for p in (t.problem() for t in self.supervised) if p]
            if problems:
                raise NotReady("; ".join(problems))
            return True

        checks["tasks"] = tasks_ok
        return checks


def create_app(runtime: ServiceRuntime, *, title: str, description: str, routers: Sequence[APIRouter],
               version: str = "0.1.0", configure_process: bool = True) -> FastAPI:
    s = runtime.settings
    if configure_process:
        configure_logging(s.service_name, s.log_level)
    setup_tracing(s.service_name, s.otel_exporter_otlp_endpoint)
    # before the app exists: the SDK's Starlette hooks wrap the middleware the app builds
    setup_error_tracking(s, version=version)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start()
        app.state.jwt_verifier = runtime.verifier
        log.info("service started", extra={"port": s.port})
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    app.state.runtime = runtime
    install_problem_handlers(app)
    instrument(app, s.service_name)
    app.include_router(health_router(_lazy_checks(runtime)))
    for router in routers:
        app.include_router(router)
    _document_problems(app)
    return app


def _lazy_checks(runtime: ServiceRuntime) -> dict[str, ReadinessCheck]:
    # resources exist only after start(); resolve them when /readyz is called
    def deferred(name: str) -> ReadinessCheck:
        return lambda: runtime.readiness_checks()[name]()

    return {name: deferred(name) for name in runtime.readiness_checks()}


def _document_problems(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
