"""`python -m chat_service edge`: one WebSocket edge process on uvloop until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
from importlib import metadata

import uvloop
from servicekit.errortracking import setup_error_tracking
from servicekit.logging import configure_logging
from servicekit.observability import setup_tracing

from chat_service.edge.config import EdgeSettings
from chat_service.edge.server import Edge


async def serve(settings: EdgeSettings) -> None:
    edge = await Edge(settings).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        # sockets get 1001 (going away): clients reconnect to another edge and resume with `since`
        await edge.stop()


def run_edge(settings=None) -> int:
    """run a chat WebSocket edge (EDGE_ID, PORT)"""
    if not isinstance(settings, EdgeSettings):
        settings = EdgeSettings()
    configure_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)
    setup_error_tracking(settings, version=metadata.version("chat-service"))
    uvloop.run(serve(settings))
    return 0
