"""Idempotent JetStream consumers: the inbox row and the handler's effect commit together, the
message is acknowledged only after that commit, and a message that keeps failing becomes a
recorded dead letter instead of looping forever or vanishing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from prometheus_client import Counter, Gauge
from sqlalchemy import Column, DateTime, LargeBinary, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope, parse_event
from contracts.subjects import EVENTS_STREAM
from servicekit.db import Database
from servicekit.messaging import extract_trace_context

log = logging.getLogger("servicekit.inbox")
tracer = trace.get_tracer("servicekit.inbox")

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]

CONSUMED = Counter("inbox_processed_total", "Events handled by a consumer", ["consumer", "outcome"])
REDELIVERED = Counter("inbox_redeliveries_total", "Deliveries after the first", ["consumer"])
DEAD_LETTERS = Counter("inbox_dead_letters_total", "Events given up on and recorded", ["consumer"])
# consumer lag: what the stream holds for this consumer beyond what it has fetched (JetStream's
# own count, carried by every delivery; 0 once a fetch comes back empty)
PENDING = Gauge("inbox_consumer_pending", "Events waiting in JetStream for a consumer", ["consumer"])


class InboxMessage(SQLModel, table=True):
    __tablename__ = "inbox"

    consumer: str = Field(primary_key=True)
    event_id: str = Field(primary_key=True)
    processed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                    server_default=func.now()))


class DeadLetter(SQLModel, table=True):
    __tablename__ = "dead_letters"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    consumer: str
    subject: str
    event_id: str | None = None
    deliveries: int
    error: str
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    headers: dict = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                   server_default=func.now()))


class InboxConsumer:
    """A durable pull consumer that runs `handler(session, event)` exactly once per event id."""

    def __init__(self, db: Database, js: JetStreamContext, *, name: str, stream: str,
                 subjects: Sequence[str], handler: Handler, max_deliver: int = 5,
                 backoff_seconds: Sequence[float] = (1, 5, 15, 60), ack_wait_seconds: float = 30,
                 batch: int = 50, deliver_new_only: bool = False):
        self.db = db
        self.js = js
        self.name = name
        self.stream = stream
        self.subjects = list(subjects)
        self.handler = handler
        self.max_deliver = max_deliver
        self.backoff = list(backoff_seconds)
        self.ack_wait = ack_wait_seconds
        self.batch = batch
        self.deliver_new_only = deliver_new_only
        self._stop = asyncio.Event()
        self._sub = None

    async def subscribe(self) -> None:
        config = ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # one more than we allow the handler, so the last delivery can be dead-lettered by us
            max_deliver=self.max_deliver + 1,
            deliver_policy=DeliverPolicy.NEW if self.deliver_new_only else DeliverPolicy.ALL,
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
            filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
        )
        # add_consumer creates it or updates it in place; a restart resumes where it left off
        await self.js.add_consumer(self.stream, config)
        self._sub = await self.js.pull_subscribe_bind(durable=self.name, stream=self.stream)

    async def run(self) -> None:
        if self._sub is None:
            await self.subscribe()
        try:
            await self._loop()
        finally:
            # a late reply to the last fetch would otherwise hold nc.drain() for its full timeout
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                msgs = await self._sub.fetch(self.batch, timeout=1)
            except (NatsTimeout, TimeoutError):  # nats-py raises either when a fetch comes back empty
                PENDING.labels(self.name).set(0)
                continue
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("consumer fetch failed", extra={"consumer": self.name, "error": str(exc)})
                await asyncio.sleep(1)
                continue
            if msgs and msgs[-1].metadata is not None:
                PENDING.labels(self.name).set(msgs[-1].metadata.num_pending)
            for msg in msgs:
                await self.process(msg)

    def stop(self) -> None:
        self._stop.set()

    async def process(self, msg: Msg) -> str:
        """Handle one delivery; returns the outcome (processed, duplicate, retry, dead_letter)."""
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        if deliveries > 1:
            REDELIVERED.labels(self.name).inc()
        headers = dict(msg.headers or {})
        try:
            event = parse_event(msg.data)
        except Exception as exc:  # poison: retrying will never parse it
            await self._dead_letter(msg, None, deliveries, f"unparseable event: {exc}")
            return "dead_letter"

        with tracer.start_as_current_span(f"consume {event.type}", context=extract_trace_context(headers),
                                          kind=trace.SpanKind.CONSUMER,
                                          attributes={"messaging.consumer": self.name,
                                                      "messaging.message.id": event.id}):
            try:
                async with self.db.session() as session:
                    fresh = (await session.execute(text(
                        "INSERT INTO inbox (consumer, event_id) VALUES (:c, :e) ON CONFLICT DO NOTHING "
                        "RETURNING 1").bindparams(c=self.name, e=event.id))).first()
                    if fresh is None:
                        await msg.ack()
                        CONSUMED.labels(self.name, "duplicate").inc()
                        return "duplicate"
                    await self.handler(session, event)
                    await session.commit()
            except Exception as exc:
                if deliveries >= self.max_deliver:
                    await self._dead_letter(msg, event.id, deliveries, repr(exc))
                    return "dead_letter"
                delay = self.backoff[min(deliveries - 1, len(self.backoff) - 1)] if self.backoff else 0
                log.warning("consumer handler failed; will retry",
                            extra={"consumer": self.name, "eventId": event.id, "delivery": deliveries,
                                   "retryInSeconds": delay, "error": repr(exc)})
                await msg.nak(delay=delay)
                CONSUMED.labels(self.name, "retry").inc()
                return "retry"
        await msg.ack()
        CONSUMED.labels(self.name, "processed").inc()
        return "processed"

    async def _dead_letter(self, msg: Msg, event_id: str | None, deliveries: int, error: str) -> None:
        async with self.db.session() as session:
            session.add(DeadLetter(consumer=self.name, subject=msg.subject, event_id=event_id,
                                   deliveries=deliveries, error=error[:2000], payload=msg.data,
                                   headers=dict(msg.headers or {})))
            await session.commit()
        await msg.term()
        DEAD_LETTERS.labels(self.name).inc()
        CONSUMED.labels(self.name, "dead_letter").inc()
        log.error("event dead-lettered", extra={"consumer": self.name, "eventId": event_id,
                                                "deliveries": deliveries, "error": error[:500]})


class ConsumerWorker:
    """Runs one `InboxConsumer` for the life of the process, building it again after a failure
    (a NATS reconnect that lost the pull subscription, a consumer deleted under it).

    Give it to `ServiceRuntime.add_worker`; `stop()` ends it at shutdown."""

    def __init__(self, name: str, subjects: Sequence[str], handler: Handler, *,
                 stream: str = EVENTS_STREAM.name, retry_seconds: float = 1.0, **consumer_options):
        self.__name__ = name
        self.name = name
        self.subjects = tuple(subjects)
        self.handler = handler
        self.stream = stream
        self.retry_seconds = retry_seconds
        self.consumer_options = consumer_options
        self.consumer: InboxConsumer | None = None
        self._stopped = asyncio.Event()

    async def __call__(self, runtime) -> None:
        while not self._stopped.is_set():
            self.consumer = InboxConsumer(runtime.db, runtime.js, name=self.name, stream=self.stream,
                                          subjects=self.subjects, handler=self.handler,
                                          **self.consumer_options)
            try:
                await self.consumer.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer failed; starting it again",
                            extra={"consumer": self.name, "error": repr(exc)})
                try:
                    await asyncio.wait_for(self._stopped.wait(), self.retry_seconds)
                except TimeoutError:
                    pass

    def stop(self) -> None:
        self._stopped.set()
        if self.consumer is not None:
            self.consumer.stop()
