"""The loop of a worker that does one pass every so many seconds for the life of the process.

Several workers had a copy of it (channels' subscription renewals, the retention job, the media
gateway's thumbnails, stale-session sweep and ingest stats, the streams sweeper and viewer counter).
What every copy must get right, and now gets once:
- the wait between passes ends the moment the worker is stopped: a shutdown never sits out an
  interval (some are minutes) before the service can exit;
- a pass that raises either is logged and tried again after the interval (a database blip is a
  warning, not a crash that marks the service not ready), or ends the loop so that the runtime's
  supervisor reports and restarts the task (servicekit.supervision), as the worker chooses;
- cancelling the task is never taken for a failed pass.
Workers that also wake early when work is queued (media_gateway.jobs, the streams clip cutter) are
a different loop and keep their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def every(seconds: float | Callable[[], float], step: Callable[[], Awaitable[object]], stop: asyncio.Event,
                *, log: logging.Logger | None = None, failed: str = "periodic pass failed") -> None:
    """Await `step()`, then again every `seconds` after the last pass ended, until `stop` is set.
    `seconds` may be a function, asked after each pass: a worker that knows it has nothing to
    watch can wait longer (the streams sweeper while nothing is LIVE).

    With `log`, a pass that raises is logged there as a warning `failed` (`error`: the exception's
    repr) and the loop goes on; without it the exception ends the loop and reaches the caller. The
    result of a pass is ignored. Returns as soon as `stop` is set, also in the middle of a wait; a
    pass under way is not interrupted (cancel the task for that).
    """
    while not stop.is_set():
        if log is None:
            await step()
        else:
            try:
                await step()
            except Exception as exc:
                log.warning(failed, extra={"error": repr(exc)})
        try:
            await asyncio.wait_for(stop.wait(), seconds() if callable(seconds) else seconds)
        except TimeoutError:
            pass
