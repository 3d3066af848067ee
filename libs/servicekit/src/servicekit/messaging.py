"""NATS connection, JetStream stream provisioning and trace propagation through headers."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry import context as otel_context
from opentelemetry import propagate

from contracts.subjects import StreamSpec

log = logging.getLogger("servicekit.messaging")


async def connect(url: str, name: str) -> NATS:
    async def on_error(exc: Exception) -> None:
        log.warning("nats error", extra={"error": str(exc)})

    return await nats.connect(url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                              error_cb=on_error, connect_timeout=5)


def stream_config(spec: StreamSpec) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        storage=StorageType.FILE if spec.storage == "file" else StorageType.MEMORY,
        duplicate_window=float(spec.duplicate_window_seconds),
        max_age=float(spec.max_age_seconds) if spec.max_age_seconds else None,
        num_replicas=1,
    )


async def ensure_streams(js: JetStreamContext, specs) -> None:
    """Create or update the JetStream streams a service publishes to or consumes from.

    Replica count is left as deployed: production raises it to 3 (see deploy/k8s) and an update
    here must not shrink it.
    """
    for spec in specs:
        cfg = stream_config(spec)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(cfg)
            continue
        cfg.num_replicas = info.config.num_replicas
        if (set(info.config.subjects or []) != set(cfg.subjects)
                or info.config.duplicate_window != cfg.duplicate_window
                or (info.config.max_age or 0) != (cfg.max_age or 0)):
            await js.update_stream(cfg)


def inject_trace_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_trace_context(headers: dict[str, str] | None) -> otel_context.Context:
    return propagate.extract(headers or {})
