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
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import text

from servicekit.db import Database
from servicekit.periodic import every

log = logging.getLogger("servicekit.retention")

PRUNED = Counter("retention_pruned_rows_total", "Rows deleted by retention", ["table"])


@dataclass(frozen=True)
class Prune:
    """Delete rows of `table` matching `where` (SQL, with :named parameters from `params`,
    called at each run so settings and now() are read then)."""

    table: str
    where: str
    params: Callable[[], Mapping[str, Any]] = field(default=dict)


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
            return bool((await session.execute(exists)).scalar())

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
        # no logger: a failure propagates, the runtime's supervisor reports and restarts
        await every(self.interval, self.run_once, self._stop)

    def stop(self) -> None:
        self._stop.set()


# ---- stored objects nothing references ----------------------------------------------------------

# the advisory lock space of object keys (pg_advisory_xact_lock(int, int): this, hashtext(key))
_OBJECT_LOCKS = 0x6F626A73  # "objs"


def keys_by_owner(keys: list[str]) -> dict[str, list[str]]:
    """`<prefix>/<owner uuid>/...` keys grouped by owner id, for a sweep's `references`: the row
    to ask is the owner's. A key without a uuid there is none an upload makes: nothing refers to it."""
    owners: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split("/")
        try:
            owners.setdefault(str(uuid.UUID(parts[1])), []).append(key)
        except (IndexError, ValueError):
            continue
    return owners


async def lock_object_key(session, key: str) -> None:
    """Hold `key` until the session's transaction ends. An upload takes it before it stores the
    object and keeps it through the commit that references it, so the sweep (which takes it before
    it checks and deletes) never deletes an object a commit is about to reference: content-addressed
    keys come back when a user uploads the same image again."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                          {"space": _OBJECT_LOCKS, "key": key})


References = Callable[[Any, list[str]], Awaitable[set[str]]]


class UnreferencedObjects:
    """A sweep over the objects under `prefixes` that deletes those no row has referenced for
    `grace_seconds`.

    `references(session, keys)` answers which of `keys` a row of the service refers to. An object
    first found unreferenced is noted in `unreferenced_objects` with the time; it is deleted once a
    later pass finds it still unreferenced after the grace period, so the grace runs from when the
    object was replaced (not from its upload: a year-old avatar replaced now still gets its days
    for projections, caches and other services to let go of it). Objects younger than the grace
    are not looked at (an upload not yet committed). Each deletion checks again under the key's
    lock (`lock_object_key`)."""

    def __init__(self, db_of: Callable[[], Database], store_of: Callable[[], Any], prefixes: list[str],
                 references: References, *, grace_seconds: float, name: str = "objects"):
        # the runtime's database and store exist only once it started
        self.db_of = db_of
        self.store_of = store_of
        self.prefixes = prefixes
        self.references = references
        self.grace = grace_seconds
        self.name = name

    def sweep(self) -> Sweep:
        return Sweep(self.name, self.run)

    async def run(self) -> int:
        store = self.store_of()
        deleted = 0
        for prefix in self.prefixes:
            async for chunk in store.list(prefix):
                deleted += await self._chunk(store, chunk)
        async with self.db_of().session() as session:
            # notes of objects that went some other way (an operator, another replica) stop counting
            await session.execute(text("DELETE FROM unreferenced_objects "
                                       "WHERE seen_at < now() - make_interval(secs => :secs)"),
                                  {"secs": 3 * self.grace})
            await session.commit()
        return deleted

    async def _chunk(self, store, chunk: list[tuple[str, Any]]) -> int:
        settled = datetime.now(UTC) - timedelta(seconds=self.grace)
        keys = [key for key, modified in chunk if modified < settled]
        if not keys:
            return 0
        async with self.db_of().session() as session:
            referenced = await self.references(session, keys)
            unreferenced = [k for k in keys if k not in referenced]
            if referenced:
                await session.execute(text("DELETE FROM unreferenced_objects WHERE key = ANY(:keys)"),
                                      {"keys": list(referenced)})
            if unreferenced:
                await session.execute(text("INSERT INTO unreferenced_objects (key, seen_at) "
                                           "SELECT unnest(CAST(:keys AS text[])), now() ON CONFLICT DO NOTHING"),
                                      {"keys": unreferenced})
            due = (await session.execute(text(
                "SELECT key FROM unreferenced_objects WHERE key = ANY(:keys) "
                "AND seen_at < now() - make_interval(secs => :secs)"),
                {"keys": unreferenced, "secs": self.grace})).scalars().all() if unreferenced else []
            await session.commit()
        deleted = 0
        for key in due:
            async with self.db_of().session() as session:
                await lock_object_key(session, key)
                if not await self.references(session, [key]):
                    try:
                        await store.delete(key)
                    except FileNotFoundError:
                        pass
                    deleted += 1
                await session.execute(text("DELETE FROM unreferenced_objects WHERE key = :key"), {"key": key})
                await session.commit()
        return deleted
