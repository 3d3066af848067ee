"""Transactional outbox: events are written in the same transaction as the state they describe,
then a relay publishes them to JetStream.

Guarantees:
- nothing is published for a transaction that rolled back (the row never existed);
- nothing committed stays unpublished: the relay retries until JetStream acknowledges;
- no double publish across a crash between JetStream's ack and marking the row: the event id is
  the `Nats-Msg-Id`, so JetStream's duplicate window drops the republish;
- one row JetStream keeps refusing (a poison row) does not hold back the rows behind it: after
  `max_attempts` refusals while JetStream answers it is parked (left unpublished, no longer
  tried, counted in `outbox_parked`). A NATS/JetStream outage counts no attempts: it is every
  row's problem, and the pass just stops and backs off.

The relay selects unpublished rows, not "rows after the last id it saw": ids and timestamps can
commit out of order, and a cursor would skip a row that committed late.

When it passes: at start, on every NOTIFY (sent by `add_event`, delivered on commit), and on a
safety poll. The poll is short (`poll_seconds`) while its LISTEN connection is down and long
(`listen_poll_seconds`) while it is up: then every commit wakes it, and the poll only covers
what no commit announces (a row another replica held and gave up without committing). A change
of the listener's state wakes it at once (servicekit.notify), so nothing committed while nobody
listened waits for the long poll. An idle service then asks PostgreSQL nothing for tens of seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Column, DateTime, Index, LargeBinary, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from servicekit.db import Database, libpq_dsn
from servicekit.messaging import inject_trace_headers
from servicekit.notify import NotifyListener

log = logging.getLogger("servicekit.outbox")
NOTIFY_CHANNEL = "outbox_pending"

OUTBOX_PUBLISHED = Counter("outbox_published_total", "Events relayed from the outbox to JetStream",
                           ["event_type"])
OUTBOX_LAG = Histogram("outbox_lag_seconds", "Time from commit to JetStream acknowledgement",
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
OUTBOX_PENDING = Gauge("outbox_pending", "Unpublished outbox rows still to be relayed (parked ones aside)")
OUTBOX_PARKED = Gauge("outbox_parked", "Unpublished outbox rows the relay gave up on after max attempts")
OUTBOX_ERRORS = Counter("outbox_publish_errors_total", "Failed attempts to publish an outbox row")


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
    )

    id: uuid.UUID = Field(primary_key=True)
    subject: str
    event_type: str
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    headers: dict = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    published_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    attempts: int = 0


_last_stamp = datetime.min.replace(tzinfo=UTC)


def _staging_stamp() -> datetime:
    """A strictly increasing time for this process. The relay publishes in `created_at` order;
    the column's default, now(), is the transaction's start time, the same for every row of one
    transaction, so events staged together (created, then updated) would be relayed in random
    order. Stamping at staging keeps them in the order the code staged them."""
    global _last_stamp
    now = datetime.now(UTC)
    _last_stamp = now if now > _last_stamp else _last_stamp + timedelta(microseconds=1)
    return _last_stamp


async def add_event(session: AsyncSession, event: Envelope, subject: str) -> None:
    """Stage an event in the caller's transaction; it is relayed after that transaction commits."""
    session.add(OutboxMessage(
        id=uuid.UUID(event.id),
        created_at=_staging_stamp(),
        subject=subject,
        event_type=event.type,
        payload=event.to_json_bytes(),
        headers=inject_trace_headers({"Ce-Type": event.type, "Ce-Source": event.source}),
    ))
    # delivered by PostgreSQL only on commit: the relay wakes up without polling
    await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


class OutboxRelay:
    def __init__(self, db: Database, js: JetStreamContext, *, batch_size: int = 100,
                 poll_seconds: float = 1.0, listen_poll_seconds: float = 30.0, retention_seconds: float = 86400,
                 max_attempts: int = 10, max_backoff_seconds: float = 30.0, count_interval_seconds: float = 1.0,
                 listen_check_seconds: float = 30.0):
        self.db = db
        self.js = js
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        # never shorter than the plain poll: a listener must not make the relay poll more
        self.listen_poll_seconds = max(listen_poll_seconds, poll_seconds)
        self.retention_seconds = retention_seconds
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff_seconds
        # counting the backlog scans it: at most once per interval while a big backlog drains
        self.count_interval_seconds = count_interval_seconds
        self._counted_at = float("-inf")
        # a pass skipped the count (too soon after the last): it is owed once the interval is
        # over, not at the next safety poll (30 s away while LISTEN is up)
        self._count_due = False
        # set by a pass that stopped on a failure: the next one waits (backoff), commits' NOTIFYs
        # do not wake it, so attempts are spread over time rather than burnt in a burst
        self.failed = False
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.listener = NotifyListener(libpq_dsn(db.url), NOTIFY_CHANNEL, self._wake,
                                       check_seconds=listen_check_seconds, name="outbox listener")

    async def publish_pending(self) -> int:
        """One pass: publish a batch of unpublished rows in commit order; returns how many."""
        self.failed = False
        async with self.db.session() as session:
            rows = (await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.published_at).is_(None))
                .where(col(OutboxMessage.attempts) < self.max_attempts)
                .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )).all()
            published = 0
            for row in rows:
                try:
                    await self.js.publish(row.subject, row.payload, timeout=5,
                                          headers={**row.headers, "Nats-Msg-Id": str(row.id)})
                except Exception as exc:
                    OUTBOX_ERRORS.inc()
                    if not await self._jetstream_answers():
                        # NATS down or JetStream unavailable: keep the row and its attempts
                        log.warning("outbox publish failed; JetStream unavailable",
                                    extra={"eventId": str(row.id), "error": str(exc)})
                        self.failed = True
                        break
                    row.attempts += 1
                    if row.attempts >= self.max_attempts:
                        log.error("outbox row parked: JetStream keeps refusing it",
                                  extra={"eventId": str(row.id), "subject": row.subject,
                                         "eventType": row.event_type, "attempts": row.attempts,
                                         "error": str(exc)})
                        continue  # the rows behind it go on
                    log.warning("outbox publish failed", extra={"eventId": str(row.id), "error": str(exc),
                                                                "attempts": row.attempts})
                    self.failed = True
                    break  # order kept: retried before anything behind it
                now = datetime.now(UTC)
                row.published_at = now
                published += 1
                OUTBOX_PUBLISHED.labels(row.event_type).inc()
                OUTBOX_LAG.observe(max(0.0, (now - row.created_at).total_seconds()))
            await session.commit()
            if time.monotonic() - self._counted_at >= self.count_interval_seconds:
                await self._count(session)
            else:
                self._count_due = True
            return published

    async def _count(self, session: AsyncSession) -> None:
        pending, parked = (await session.execute(text(
            "SELECT count(*) FILTER (WHERE attempts < :n), count(*) FILTER (WHERE attempts >= :n) "
            "FROM outbox WHERE published_at IS NULL").bindparams(n=self.max_attempts))).one()
        OUTBOX_PENDING.set(pending)
        OUTBOX_PARKED.set(parked)
        self._counted_at = time.monotonic()
        self._count_due = False

    async def _jetstream_answers(self) -> bool:
        """After a refused publish: is it this row, or is JetStream away for everyone?"""
        try:
            await asyncio.wait_for(self.js.account_info(), 2)
            return True
        except Exception:
            return False

    async def purge_published(self) -> None:
        async with self.db.session() as session:
            await session.execute(text(
                "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => :secs)"
            ).bindparams(secs=self.retention_seconds))
            await session.commit()

    def _wait_seconds(self) -> float:
        """How long an idle relay sleeps unless a NOTIFY (or the listener's change) wakes it."""
        wait = self.listen_poll_seconds if self.listener.listening else self.poll_seconds
        if self._count_due:
            wait = min(wait, max(0.0, self._counted_at + self.count_interval_seconds - time.monotonic()))
        return wait

    async def run(self) -> None:
        listener = asyncio.create_task(self.listener.run())
        last_purge = time.monotonic()
        failures = 0
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    n = await self.publish_pending()
                except Exception as exc:  # the database away: same backoff
                    log.warning("outbox pass failed", extra={"error": str(exc)})
                    n, self.failed = 0, True
                if self.failed:
                    failures += 1
                    try:
                        await asyncio.wait_for(self._stop.wait(),
                                               min(self.poll_seconds * 2 ** (failures - 1), self.max_backoff))
                    except TimeoutError:
                        pass
                    continue
                failures = 0
                if n >= self.batch_size:
                    continue  # more waiting: no sleep
                if time.monotonic() - last_purge > 3600:
                    last_purge = time.monotonic()
                    try:
                        await self.purge_published()
                    except Exception as exc:
                        log.warning("outbox purge failed", extra={"error": str(exc)})
                try:
                    await asyncio.wait_for(self._wake.wait(), self._wait_seconds())
                except TimeoutError:
                    pass
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


async def stage_event(session: AsyncSession, event_type: str, data, *, source: str,
                      subject_params: dict[str, str] | None = None, key: str | None = None) -> Envelope:
    """Build the catalog's envelope for `event_type` and stage it in the caller's transaction."""
    from contracts.catalog import subject_for
    from contracts.envelope import make_event

    event = make_event(event_type, data, source=source, subject=key)
    await add_event(session, event, subject_for(event_type, **(subject_params or {})))
    return event
