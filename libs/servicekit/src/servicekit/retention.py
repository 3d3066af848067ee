"""Retention: rows that are only history are deleted once they are old enough.

`ServiceRuntime` runs one `RetentionJob` per service (a supervised background task) holding the
shared rules (inbox, dead letters) plus any a service adds with `runtime.add_prune(Prune(...))`.
Every `retention_interval_seconds` it deletes, per rule, the rows matching its condition, in
batches of `retention_batch_size` (each batch its own short transaction: no long lock, no huge
WAL burst). Replicas may run it at once: a row deleted twice is simply not there the second time.
A rule whose table this service does not have is skipped, so the shared rules fit every service.

What is not a row (files on disk, objects in the store) is removed by a `Sweep` the service adds
with `runtime.add_sweep(Sweep(...))`: its own function, run in the same pass after the rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from sqlalchemy import text

from servicekit.db import Database

log = logging.getLogger("servicekit.retention")

PRUNED = Counter("retention_pruned_rows_total", "Rows deleted by retention", ["table"])


@dataclass(frozen=True)
class Prune:
    """Delete rows of `table` matching `where` (SQL, with :named parameters from `params`,
    called at each run so settings and now() are read then)."""

    table: str
    where: str
    params: Callable[[], Mapping[str, Any]] = field(default=lambda: {})


@dataclass(frozen=True)
class Sweep:
    """Remove what `run()` finds expired (files, stored objects); it returns how many it removed.
    `name` labels the count in the metric and the log, like a table name."""

    name: str
    run: Callable[[], Awaitable[int]]


def inbox_prune(days: float) -> Prune:
    # the inbox row is what makes a redelivery a duplicate: it must outlive every way the event
    # can come again (the EVENTS stream keeps messages 7 days), hence the setting's floor
    return Prune("inbox", "processed_at < now() - make_interval(secs => :secs)",
                 lambda: {"secs": days * 86400})


def dead_letters_prune(days: float) -> Prune:
    return Prune("dead_letters", "recorded_at < now() - make_interval(secs => :secs)",
                 lambda: {"secs": days * 86400})


class RetentionJob:
    def __init__(self, db: Database, prunes: list[Prune], *, interval_seconds: float = 3600,
                 batch_size: int = 5000, sweeps: list[Sweep] | None = None):
        self.db = db
        self.prunes = prunes
        self.sweeps = sweeps if sweeps is not None else []
        self.interval = interval_seconds
        self.batch_size = batch_size
        self._stop = asyncio.Event()

    async def run_once(self) -> dict[str, int]:
        """One pass over every rule; returns rows deleted per table."""
        deleted: dict[str, int] = {}
        for prune in self.prunes:
            if not await self._exists(prune.table):
                continue
            total = 0
            while True:
                n = await self._delete_batch(prune)
                total += n
                if n < self.batch_size:
                    break
            deleted[prune.table] = deleted.get(prune.table, 0) + total
            if total:
                PRUNED.labels(prune.table).inc(total)
                log.info("retention pruned rows", extra={"table": prune.table, "rows": total})
        for sweep in self.sweeps:
            removed = await sweep.run()
            deleted[sweep.name] = deleted.get(sweep.name, 0) + removed
            if removed:
                PRUNED.labels(sweep.name).inc(removed)
                log.info("retention removed", extra={"table": sweep.name, "rows": removed})
        return deleted

    async def _exists(self, table: str) -> bool:
        async with self.db.session() as session:
            exists = text("SELECT to_regclass(:t) IS NOT NULL").bindparams(t=table)
            return (await session.execute(exists)).scalar()

    async def _delete_batch(self, prune: Prune) -> int:
        # table and condition come from code, never from input; the values are bound parameters
        statement = text(
            f"DELETE FROM {prune.table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {prune.table} WHERE {prune.where} LIMIT :_batch FOR UPDATE SKIP LOCKED"
            f")) RETURNING 1")
        async with self.db.session() as session:
            rows = (await session.execute(statement, {**prune.params(), "_batch": self.batch_size})).all()
            await session.commit()
        return len(rows)

    async def run(self) -> None:
        while not self._stop.is_set():
            await self.run_once()  # a failure propagates: the runtime's supervisor reports and restarts
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
