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
PAUSED = Gauge("inbox_consumer_paused", "1 while a consumer waits for its database to come back",
               ["consumer"])


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
    # None until the insert: the database's clock stamps it (server_default)
    recorded_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()))


class InboxConsumer:
    """A durable pull consumer that runs `handler(session, event)` exactly once per event id."""

    def __init__(self, db: Database, js: JetStreamContext, *, name: str, stream: str,
                 subjects: Sequence[str], handler: Handler, max_deliver: int = 5,
                 backoff_seconds: Sequence[float] = (1, 5, 15, 60), ack_wait_seconds: float = 30,
                 batch: int = 50, deliver_new_only: bool = False,
                 outage_probe_seconds: Sequence[float] = (0.5, 1, 2, 5)):
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
        self.outage_probe = list(outage_probe_seconds) or [1.0]
        # the fetched batch not yet settled: kept alive (in progress) while the database is down
        self._held: list[Msg] = []
        self._stop = asyncio.Event()
        self._sub: JetStreamContext.PullSubscription | None = None

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # unlimited: `process` alone decides when to give up, and only once the dead letter is
            # written. A JetStream limit would drop a message whose dead-letter write failed.
            max_deliver=-1,
            deliver_policy=DeliverPolicy.NEW if self.deliver_new_only else DeliverPolicy.ALL,
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
            filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
        )
        # add_consumer creates it or updates it in place; a restart resumes where it left off
        await self.js.add_consumer(self.stream, config)
        self._sub = await self.js.pull_subscribe_bind(durable=self.name, stream=self.stream)
        return self._sub

    async def run(self) -> None:
        sub = self._sub if self._sub is not None else await self.subscribe()
        try:
            await self._loop(sub)
        finally:
            # a late reply to the last fetch would otherwise hold nc.drain() for its full timeout
            try:
                await sub.unsubscribe()
            except Exception:
                pass

    async def _loop(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stop.is_set():
            try:
                msgs = await sub.fetch(self.batch, timeout=1)
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
            self._held = list(msgs)
            for msg in msgs:
                await self.process(msg)
                self._held.remove(msg)

    def stop(self) -> None:
        self._stop.set()

    async def process(self, msg: Msg) -> str:
        """Handle one delivery; returns the outcome (processed, duplicate, retry, dead_letter, or
        paused: stopped while waiting for the database, the delivery left to come back)."""
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        if deliveries > 1:
            REDELIVERED.labels(self.name).inc()
        headers = dict(msg.headers or {})
        try:
            event = parse_event(msg.data)
        except Exception as exc:  # poison: retrying will never parse it
            return await self._dead_letter(msg, None, deliveries, f"unparseable event: {exc}")

        with tracer.start_as_current_span(f"consume {event.type}", context=extract_trace_context(headers),
                                          kind=trace.SpanKind.CONSUMER,
                                          attributes={"messaging.consumer": self.name,
                                                      "messaging.message.id": event.id}):
            while True:
                try:
                    outcome = await self._apply(msg, event)
                except Exception as exc:
                    # an outage is not the handler's fault: hold the delivery (no nak, no count)
                    # until the database answers again, then run it once more
                    if await self._database_down():
                        if not await self._wait_for_database(msg):
                            return "paused"
                        continue
                    if deliveries >= self.max_deliver:
                        return await self._dead_letter(msg, event.id, deliveries, repr(exc))
                    delay = self.backoff[min(deliveries - 1, len(self.backoff) - 1)] if self.backoff else 0
                    log.warning("consumer handler failed; will retry",
                                extra={"consumer": self.name, "eventId": event.id, "delivery": deliveries,
                                       "retryInSeconds": delay, "error": repr(exc)})
                    await msg.nak(delay=delay)
                    CONSUMED.labels(self.name, "retry").inc()
                    return "retry"
                await msg.ack()
                CONSUMED.labels(self.name, outcome).inc()
                return outcome

    async def _apply(self, msg: Msg, event: Envelope) -> str:
        async with self.db.session() as session:
            fresh = (await session.execute(text(
                "INSERT INTO inbox (consumer, event_id) VALUES (:c, :e) ON CONFLICT DO NOTHING "
                "RETURNING 1").bindparams(c=self.name, e=event.id))).first()
            if fresh is None:
                return "duplicate"
            await self.handler(session, event)
            await session.commit()
        return "processed"

    async def _database_down(self) -> bool:
        """Asked after a failure: a probe, not the exception's type, tells an outage from a bug
        (a handler's own OperationalError, a deadlock, must still count)."""
        try:
            await asyncio.wait_for(self.db.ping(), 5)
            return False
        except Exception:
            return True

    async def _wait_for_database(self, msg: Msg) -> bool:
        """Pause this consumer (no fetching) until the database answers; the held deliveries are
        marked in progress so JetStream neither redelivers them nor counts a delivery. False if
        the consumer was stopped meanwhile (the delivery then comes back after the ack wait)."""
        PAUSED.labels(self.name).set(1)
        log.error("database unreachable; consumer paused", extra={"consumer": self.name})
        held = self._held or [msg]
        step = 0
        try:
            while not self._stop.is_set():
                for m in held:
                    try:
                        await m.in_progress()
                    except Exception:  # NATS away too: the ack wait decides, nothing is lost
                        pass
                delay = min(self.outage_probe[min(step, len(self.outage_probe) - 1)], self.ack_wait / 3)
                step += 1
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    pass
                if not await self._database_down():
                    log.warning("database back; consumer resumed", extra={"consumer": self.name})
                    return True
            return False
        finally:
            PAUSED.labels(self.name).set(0)

    async def _dead_letter(self, msg: Msg, event_id: str | None, deliveries: int, error: str) -> str:
        while True:
            try:
                async with self.db.session() as session:
                    session.add(DeadLetter(consumer=self.name, subject=msg.subject, event_id=event_id,
                                           deliveries=deliveries, error=error[:2000], payload=msg.data,
                                           headers=dict(msg.headers or {})))
                    await session.commit()
                break
            except Exception as exc:
                if await self._database_down():
                    if not await self._wait_for_database(msg):
                        return "paused"
                    continue
                # not recorded, so not given up on: it comes back (the consumer has no JetStream
                # delivery limit) and the write is tried again
                delay = self.backoff[-1] if self.backoff else 0
                log.error("dead-letter write failed; will retry",
                          extra={"consumer": self.name, "eventId": event_id, "error": repr(exc)})
                await msg.nak(delay=delay)
                CONSUMED.labels(self.name, "retry").inc()
                return "retry"
        await msg.term()
        DEAD_LETTERS.labels(self.name).inc()
        CONSUMED.labels(self.name, "dead_letter").inc()
        log.error("event dead-lettered", extra={"consumer": self.name, "eventId": event_id,
                                                "deliveries": deliveries, "error": error[:500]})
        return "dead_letter"


class ConsumerWorker:
    """Runs one `InboxConsumer` for the life of the process. Give it to `ServiceRuntime.add_worker`,
    which supervises it: a failure (a NATS reconnect that lost the pull subscription, a consumer
    deleted under it) is logged, shown in /readyz, and the worker is started again with a new
    consumer after a backoff. `stop()` ends it at shutdown."""

    def __init__(self, name: str, subjects: Sequence[str], handler: Handler, *,
                 stream: str = EVENTS_STREAM.name, **consumer_options):
        self.__name__ = name
        self.name = name
        self.subjects = tuple(subjects)
        self.handler = handler
        self.stream = stream
        self.consumer_options = consumer_options
        self.consumer: InboxConsumer | None = None
        self._stopped = asyncio.Event()

    async def __call__(self, runtime) -> None:
        if self._stopped.is_set():
            return
        self.consumer = InboxConsumer(runtime.db, runtime.js, name=self.name, stream=self.stream,
                                      subjects=self.subjects, handler=self.handler,
                                      **self.consumer_options)
        await self.consumer.run()

    def stop(self) -> None:
        self._stopped.set()
        if self.consumer is not None:
            self.consumer.stop()
