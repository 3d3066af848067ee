"""NATS connection, JetStream stream provisioning and trace propagation through headers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError, ServiceUnavailableError
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from contracts.access import configures_streams, inbox_prefix
from contracts.requests import ReplyT, RequestSpec, RequestT
from contracts.subjects import StreamSpec

if TYPE_CHECKING:
    from servicekit.app import ServiceRuntime

log = logging.getLogger("servicekit.messaging")
_tracer = trace.get_tracer("servicekit.messaging")
T = TypeVar("T")


async def connect(url: str, name: str) -> NATS:
    async def on_error(exc: Exception) -> None:
        log.warning("nats error", extra={"error": str(exc)})

    # `NATS_URL` may list several servers of a cluster, comma-separated: the client starts with any
    # that answers and fails over to the others (and to those the cluster advertises)
    servers, user, password = split_credentials(url)
    options = {}
    if user is not None:
        # given as options, not left in the URLs: nats-py logs in to a server the cluster
        # advertises (no user in its URL) only with these. Replies come under the user's own
        # inbox prefix, the only one its permissions let it subscribe to (contracts.access).
        options = {"user": user, "password": password or "", "inbox_prefix": inbox_prefix(user)}
    return await nats.connect(servers, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                              error_cb=on_error, connect_timeout=5, **options)


def split_credentials(url: str) -> tuple[list[str], str | None, str | None]:
    """`nats://user:pass@a:4222,nats://user:pass@b:4222` -> (["nats://a:4222", "nats://b:4222"],
    "user", "pass"). Every server of one URL list shares one user."""
    servers, user, password = [], None, None
    for raw in (u.strip() for u in url.split(",")):
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else f"nats://{raw}")
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "") or None
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        servers.append(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))
    return servers, user, password


def stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        storage=StorageType.FILE if spec.storage == "file" else StorageType.MEMORY,
        duplicate_window=float(spec.duplicate_window_seconds),
        max_age=float(spec.max_age_seconds) if spec.max_age_seconds else None,
        max_msgs_per_subject=spec.max_msgs_per_subject,
        num_replicas=replicas,
    )


# what a clustered JetStream answers (or fails to) while it elects a meta leader or while many
# services start at once: worth waiting for, unlike a refusal
JETSTREAM_NOT_READY = (NatsTimeout, ServiceUnavailableError, NoRespondersError)


async def patiently(step: Callable[[], Awaitable[T]], what: str, *, patience: float = 120.0) -> T:
    """Run a start-up step against JetStream, waiting out a JetStream that does not answer yet
    (for `patience` seconds, backing off) instead of crashing the service: a supervisor would only
    restart it into the same wait, and a dev stack or rehearsal would count it as failed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    delay = 0.5
    while True:
        try:
            return await step()
        except JETSTREAM_NOT_READY as exc:
            if loop.time() + delay > deadline:
                raise
            log.warning("jetstream not answering, waiting", extra={"step": what, "error": repr(exc),
                                                                   "retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def may_configure(url: str) -> bool:
    """Whether the NATS user in `url` creates and updates the platform's streams and buckets
    (contracts.access: one user does; the others wait for them)."""
    return configures_streams(split_credentials(url)[1])


class _NotThereYet(Exception):
    """A stream or bucket this user may not create does not exist yet."""


async def ensure_streams(js: JetStreamContext, specs, replicas: int = 1, *, buckets=(), configure: bool = True,
                         patience: float = 120.0) -> None:
    """Create or update the JetStream streams (and KV buckets) a service publishes to or consumes
    from, or, with `configure=False`, wait until they exist.

    A stream is created with `replicas` copies and raised to it when it has fewer; a higher count
    set by an operator (`nats stream edit`) is kept, since one service starting with the default
    must not shrink a production stream.

    Only one NATS user may configure streams (contracts.access: a stream's subjects decide what
    it captures, stream keys included); a service logged in as another (`configure=False`) only
    looks its streams up and waits for that one to create them. One that differs from the
    contract is left as it is, with a warning: updating it is that user's job too.

    A clustered JetStream answers its API slowly or not at all while it elects a meta leader or
    while many services start at once; that is waited out (for `patience` seconds) instead of
    crashing the service, which a supervisor would only restart into the same wait.
    """
    deadline = asyncio.get_running_loop().time() + patience
    delay = 0.5
    waiting_for = None
    while True:
        try:
            return await _ensure_streams_once(js, specs, buckets, replicas, configure)
        except _NotThereYet as exc:
            if asyncio.get_running_loop().time() + 0.5 > deadline:
                raise TimeoutError(f"stream {exc} was not created within {patience:.0f} s (this NATS user "
                                   "may not create it; the channels service does)") from None
            if waiting_for != str(exc):
                waiting_for = str(exc)
                log.info("waiting for a stream to be created", extra={"stream": waiting_for})
            await asyncio.sleep(0.5)
        except JETSTREAM_NOT_READY as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.warning("jetstream not answering, waiting to provision streams",
                        extra={"error": repr(exc), "retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _ensure_streams_once(js: JetStreamContext, specs, buckets, replicas: int, configure: bool) -> None:
    for bucket in buckets:
        try:
            await js.stream_info(bucket.stream)
        except NotFoundError:
            if not configure:
                raise _NotThereYet(bucket.stream) from None
            await js.create_key_value(KeyValueConfig(bucket=bucket.name, history=bucket.history, replicas=replicas,
                                                     description=bucket.description))
    for spec in specs:
        cfg = stream_config(spec, replicas)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            if not configure:
                raise _NotThereYet(spec.name) from None
            await js.add_stream(cfg)
            continue
        cfg.num_replicas = max(info.config.num_replicas or 1, replicas)
        if (set(info.config.subjects or []) != set(spec.subjects)
                or info.config.duplicate_window != cfg.duplicate_window
                or (info.config.max_age or 0) != (cfg.max_age or 0)
                or (info.config.max_msgs_per_subject or -1) != cfg.max_msgs_per_subject
                or (info.config.num_replicas or 1) != cfg.num_replicas):
            if configure:
                await js.update_stream(cfg)
            elif set(info.config.subjects or []) != set(spec.subjects):
                log.warning("stream differs from the contract; the service that configures streams "
                            "updates it", extra={"stream": spec.name})


@contextmanager
def handling_span(msg: Msg, name: str, *, kind: trace.SpanKind = trace.SpanKind.SERVER,
                  **attributes) -> Iterator[trace.Span]:
    """A span for handling a NATS message (a request: SERVER; a stream message: CONSUMER) that
    continues the trace the sender put into the headers; the handler's own requests, outbox
    events and logs then belong to it."""
    with _tracer.start_as_current_span(name, context=extract_trace_context(dict(msg.headers or {})),
                                       kind=kind, attributes=_message_attributes(msg, attributes)) as span:
        yield span


def start_message_span(msg: Msg, name: str, **attributes) -> trace.Span:
    """A CONSUMER span continuing `msg`'s trace, not made current; the caller ends it (a batch
    consumer opens one per message and ends them all when the batch is committed)."""
    return _tracer.start_span(name, context=extract_trace_context(dict(msg.headers or {})),
                              kind=trace.SpanKind.CONSUMER, attributes=_message_attributes(msg, attributes))


def _message_attributes(msg: Msg, extra: dict) -> dict:
    return {"messaging.destination.name": msg.subject, **extra}


async def request(nc: NATS, subject: str, payload: bytes, *, timeout: float) -> Msg:
    """`nc.request` inside a client span whose context travels in the request's headers, so the
    responder's work (`handling_span`) joins the caller's trace."""
    with _tracer.start_as_current_span(f"request {subject}", kind=trace.SpanKind.CLIENT,
                                       attributes={"messaging.destination.name": subject}):
        return await nc.request(subject, payload, timeout=timeout, headers=inject_trace_headers())


class NoAnswer(Exception):
    """A request got no usable reply: no responder, a timeout, or a reply outside the contract."""


async def ask(nc: NATS, spec: RequestSpec[RequestT, ReplyT], message: RequestT, *, timeout: float) -> ReplyT:
    """Send `message` (a `spec.request`) on `spec.subject` and return the reply parsed as `spec.reply`; NoAnswer
    otherwise, so a caller chooses its own fallback (a read-through falls back to its replica)."""
    try:
        msg = await request(nc, spec.subject, message.to_json_bytes(), timeout=timeout)
    except NoRespondersError:
        raise NoAnswer(f"nobody answers {spec.subject}") from None
    except NatsTimeout:
        raise NoAnswer(f"{spec.subject} timed out") from None
    try:
        return spec.reply.model_validate_json(msg.data)
    except ValueError:  # pydantic's ValidationError is a ValueError
        raise NoAnswer(f"unreadable reply on {spec.subject}") from None


def inject_trace_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_trace_context(headers: dict[str, str] | None) -> otel_context.Context:
    return propagate.extract(headers or {})


class SubscriptionWorker:
    """A runtime worker around one NATS subscription: `subscribe(runtime)` opens it when the
    runtime starts the worker, `ready` is set while it is open, `stop()` closes it. Responders and
    readers subclass it, so the start/stop dance is written once."""

    __name__ = "subscription-worker"

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._runtime: ServiceRuntime | None = None

    async def subscribe(self, runtime: ServiceRuntime) -> Subscription:
        raise NotImplementedError

    async def __call__(self, runtime: ServiceRuntime) -> None:
        self._runtime = runtime
        sub = await self.subscribe(runtime)
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            self.ready.clear()
            try:
                await sub.unsubscribe()
            except Exception:  # connection already closing
                pass

    def stop(self) -> None:
        self._stop.set()
