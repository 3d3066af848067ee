"""Supervised background tasks: a task that raises is logged, reported and started again.

A worker that died silently used to leave a service up and "ready" while its projection, relay or
consumer stood still. Now every long-running task of a `ServiceRuntime` runs under a `Supervised`:
- an exception is logged at ERROR with its traceback and the task's name;
- the task is started again after a backoff that doubles per consecutive failure (capped), so a
  task failing at once does not spin;
- from its failure until it has run `healthy_after` seconds again the task counts as failing:
  `/readyz` answers 503 naming it and the last error's type, and `background_task_failing` is 1
  (alert BackgroundTaskFailing).
A task that returns normally has finished (a feature switched off, say) and is not started again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge

log = logging.getLogger("servicekit.supervision")

TASK_FAILURES = Counter("background_task_failures_total", "Background task crashes (each one restarted)",
                        ["task"])
TASK_FAILING = Gauge("background_task_failing",
                     "1 from a background task's crash until it has run well again for a while", ["task"])


class Supervised:
    def __init__(self, name: str, run: Callable[[], Awaitable[None]], *, backoff_seconds: float = 1.0,
                 max_backoff_seconds: float = 60.0, healthy_after_seconds: float = 10.0):
        self.name = name
        self._run = run
        self.backoff = backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.healthy_after = healthy_after_seconds
        self.failures = 0
        self.last_error: str | None = None
        self.failing = False
        self._stopping = asyncio.Event()
        self._recovered: asyncio.TimerHandle | None = None
        TASK_FAILING.labels(name).set(0)

    def stop(self) -> None:
        self._stopping.set()

    def problem(self) -> str | None:
        """What /readyz says while the task is failing; None when it is fine."""
        if not self.failing:
            return None
        return f"task {self.name} failing ({self.failures} crashes, last {self.last_error}; restarting)"

    def _mark_recovered(self) -> None:
        self.failing = False
        TASK_FAILING.labels(self.name).set(0)
        log.warning("background task running again", extra={"task": self.name, "failures": self.failures})

    async def __call__(self) -> None:
        streak = 0
        loop = asyncio.get_running_loop()
        while True:
            if self.failing:
                # running this long again counts as recovered (a crash loop never gets there)
                self._recovered = loop.call_later(self.healthy_after, self._mark_recovered)
            try:
                await self._run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping.is_set():
                    return  # failing while shutting down (connections closing) is no news
                streak = streak + 1 if self.failing else 1
                self.failures += 1
                # the type only: messages can carry DSNs or tokens, and the log has the traceback
                self.last_error = type(exc).__name__
                self.failing = True
                TASK_FAILURES.labels(self.name).inc()
                TASK_FAILING.labels(self.name).set(1)
                delay = min(self.backoff * 2 ** (streak - 1), self.max_backoff)
                log.error("background task failed; restarting", exc_info=exc,
                          extra={"task": self.name, "failures": self.failures, "restartInSeconds": delay})
            finally:
                if self._recovered is not None:
                    self._recovered.cancel()
                    self._recovered = None
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except TimeoutError:
                pass
