"""`python -m chat_service persist`: the persister as its own process (no HTTP)."""

from __future__ import annotations

import asyncio
import logging
import signal
from importlib import metadata

from contracts.subjects import CHAT_STREAM
from servicekit.db import Database
from servicekit.errortracking import setup_error_tracking
from servicekit.logging import configure_logging
from servicekit.messaging import connect, ensure_streams, may_configure
from servicekit.observability import setup_tracing

from chat_service.config import Settings
from chat_service.messages.persister import Persister

log = logging.getLogger("chat.persister")


async def run_persister(settings: Settings) -> None:
    configure_logging(f"{settings.service_name}-persister", settings.log_level)
    setup_tracing(f"{settings.service_name}-persister", settings.otel_exporter_otlp_endpoint)
    setup_error_tracking(settings, service=f"{settings.service_name}-persister",
                         version=metadata.version("chat-service"))
    db = Database(settings.database_url, pool_size=2)
    nc = await connect(settings.nats_url, name=f"{settings.service_name}-persister")
    try:
        js = nc.jetstream()
        await ensure_streams(js, [CHAT_STREAM], replicas=settings.jetstream_replicas,
                             configure=may_configure(settings.nats_url))
        persister = Persister.from_settings(settings, db, js)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, persister.stop)
        log.info("persister started")
        await persister.run()
    finally:
        try:
            await nc.drain()
        except Exception:
            await nc.close()
        await db.dispose()
