"""Work of sends that arrive together, done together.

An edge hands many sockets' `chat:send` frames to ChatService.send in the same event-loop turn;
each would otherwise cost its own Valkey round trip (and connection: redis-py's pool refuses
more than 100 at once) and its own database query for a cold profile. `TickBatch` gathers the
calls made during one loop turn and runs them as one batch on the next: one pipeline, one query.
A batch that fails as a whole fails every call in it; a command that fails alone (a per-command
error in a pipeline) fails only its own call.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

RunBatch = Callable[[list[Any]], Awaitable[Sequence[Any]]]


class TickBatch:
    """`await batch.call(item)` -> the result for `item` of `run(items)`, where `items` are all the
    items submitted in the same loop turn (in order). `run` returns one result per item; a result
    that is an exception is raised to that item's caller only."""

    def __init__(self, run: RunBatch, *, max_items: int = 1000):
        self._run = run
        self.max_items = max_items
        self._items: list[Any] = []
        self._futures: list[asyncio.Future] = []
        self._tasks: set[asyncio.Task] = set()

    def call(self, item: Any) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._items:
            loop.call_soon(self._flush)
        self._items.append(item)
        self._futures.append(future)
        if len(self._items) >= self.max_items:
            self._flush()
        return future

    def _flush(self) -> None:
        if not self._items:
            return
        items, futures = self._items, self._futures
        self._items, self._futures = [], []
        task = asyncio.get_running_loop().create_task(self._complete(items, futures))
        self._tasks.add(task)  # a reference until it ends (the loop keeps only weak ones)
        task.add_done_callback(self._tasks.discard)

    async def _complete(self, items: list, futures: list[asyncio.Future]) -> None:
        try:
            results = await self._run(items)
            if len(results) != len(items):
                raise RuntimeError(f"batch answered {len(results)} results for {len(items)} items")
        except BaseException as exc:  # the whole batch failed: every caller in it hears so
            for future in futures:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        for future, result in zip(futures, results, strict=True):
            if future.done():  # the caller gave up (cancelled)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def script_sha(body: str) -> str:
    return hashlib.sha1(body.encode()).hexdigest()


def redis_pipeline(redis: Redis, scripts: Sequence[str] = ()) -> RunBatch:
    """A TickBatch runner: each item is a command tuple, the batch one non-transactional pipeline
    (one round trip, one connection); a command's own error is its result. `EVALSHA` of one of
    `scripts` that Valkey does not know (restarted, flushed) is sent again as `EVAL`, which loads it."""
    bodies = {script_sha(body): body for body in scripts}

    async def execute(commands: list[tuple]) -> list:
        async with redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)

    async def run(commands: list[tuple]) -> list:
        results = await execute(commands)
        unknown = [n for n, r in enumerate(results) if isinstance(r, NoScriptError) and commands[n][1] in bodies]
        if unknown:
            again = await execute([("EVAL", bodies[commands[n][1]], *commands[n][2:]) for n in unknown])
            for n, result in zip(unknown, again, strict=True):
                results[n] = result
        return results

    return run
