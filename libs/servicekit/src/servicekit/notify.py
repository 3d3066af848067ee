"""LISTEN on one PostgreSQL channel over a connection of its own, for a worker that otherwise polls.

A worker that finds its work in a table (the outbox relay, the clip cutter) is woken by the NOTIFY
its writers send on commit, and polls besides: a notification is lost while no connection listens.
How often it must poll depends on whether one does, so the listener says so (`listening`), and
every change of that wakes the worker too:
- up (LISTEN registered): a pass at once finds what was committed while nobody listened; from
  then on every commit notifies, and the worker's poll is only a safety net;
- down (the connection failed or stopped answering): the worker goes back to its short poll
  at once, not at the end of its long safety wait.

A connection can also die without PostgreSQL's side closing it (a dropped route, a frozen peer):
no error comes and no notification either. So a quiet connection is asked `SELECT 1` every
`check_seconds`, and one that does not answer within `check_timeout_seconds` counts as lost.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

import psycopg
from psycopg.abc import PQGen

log = logging.getLogger("servicekit.notify")
RV = TypeVar("RV")


class _QuietConnection(psycopg.AsyncConnection):
    """psycopg wakes a coroutine waiting on its connection every 0.1 s (`interval`: how often
    blocking code looks for Ctrl-C); asyncio cancels a wait without that. On a connection that
    waits for notifications all day those wake-ups were most of an idle service's CPU: 0.2-0.3 %
    of a core per listener (bench/idle.py), nothing with this."""

    async def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        return await super().wait(gen, interval=3600.0, timeout=timeout)


class NotifyListener:
    def __init__(self, dsn: str, channel: str, wake: asyncio.Event, *, check_seconds: float = 30.0,
                 check_timeout_seconds: float = 5.0, retry_seconds: float = 1.0, name: str = "listener"):
        self.dsn = dsn
        self.channel = channel
        self.wake = wake
        self.check_seconds = check_seconds
        self.check_timeout_seconds = check_timeout_seconds
        self.retry_seconds = retry_seconds
        self.name = name
        self.listening = False

    def _set(self, listening: bool) -> None:
        if listening != self.listening:
            self.listening = listening
            self.wake.set()

    async def run(self) -> None:
        """Until cancelled: connect, LISTEN, wake on every notification; reconnect after a failure."""
        failing = False
        try:
            while True:
                connected = False
                try:
                    async with await _QuietConnection.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
                        await conn.execute(f"LISTEN {self.channel}")
                        connected, failing = True, False
                        self._set(True)
                        while True:
                            async for _ in conn.notifies(timeout=self.check_seconds):
                                self.wake.set()
                            # notifications arriving meanwhile wait in psycopg's backlog for the
                            # next notifies()
                            await self._check(conn)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001  the worker polls meanwhile; try again
                    self._set(False)
                    if not failing:  # once per outage, not per attempt
                        log.warning(f"{self.name} lost its connection" if connected
                                    else f"{self.name} cannot LISTEN; polling", extra={"error": repr(exc)})
                    failing = True
                await asyncio.sleep(self.retry_seconds)
        finally:
            self.listening = False

    async def _check(self, conn: psycopg.AsyncConnection) -> None:
        check = asyncio.ensure_future(conn.execute("SELECT 1"))
        done, _ = await asyncio.wait({check}, timeout=self.check_timeout_seconds)
        if check in done:
            check.result()
            return
        # lost: say so before psycopg's cancellation of the query, which waits for an answer too
        self._set(False)
        check.cancel()
        await asyncio.gather(check, return_exceptions=True)
        raise TimeoutError(f"no answer to a check within {self.check_timeout_seconds:g} s")
