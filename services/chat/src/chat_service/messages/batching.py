"""Work of sends that arrive together, done together.

An edge hands many sockets' `chat:send` frames to ChatService.send in the same event-loop turn;
each would otherwise cost its own Valkey round trip (and connection: redis-py's pool refuses
more than 100 at once) and its own database query for a cold profile. `TickBatch` gathers the
calls made during one loop turn and runs them as one batch on the next: one script call, one
query. A batch that fails as a whole fails every call in it; an item that fails alone (its part
of the script raised, or its command in a pipeline) fails only its own call.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

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


# Runs `body` (a Lua chunk that sets `out`, the item's reply, from `K` and `A`, the item's keys and
# arguments) once per item inside ONE script call. Each item runs under pcall, so an item whose
# commands fail (a key of the wrong type) answers {'error', text} and the others go on. One script
# call instead of a pipeline of N: redis-py packs and parses one command, Valkey runs one script.
_EACH = """
local nk, na, out = tonumber(ARGV[1]), tonumber(ARGV[2]), {}
local function item(K, A)
%s
end
for i = 0, #KEYS / nk - 1 do
  local K, A = {}, {}
  for j = 1, nk do K[j] = KEYS[i * nk + j] end
  for j = 1, na do A[j] = ARGV[2 + i * na + j] end
  local ok, res = pcall(item, K, A)
  if ok then
    out[i + 1] = res
  else
    if type(res) == 'table' then res = res.err or res[1] end
    out[i + 1] = {'error', tostring(res)}
  end
end
return out
"""


def redis_script_each(redis: Redis, body: str, *, keys: int, args: int) -> RunBatch:
    """A TickBatch runner for a per-item script: each item is `(keys, args)` of exactly `keys` and
    `args` values, the batch ONE `EVALSHA` that runs `body` for every item (see `_EACH`), sent
    again as `EVAL` when Valkey does not know it (restarted, flushed). An item's error is its result
    (a ResponseError); the others keep theirs."""
    script = _EACH % body
    sha = script_sha(script)

    async def run(items: list[tuple[Sequence, Sequence]]) -> list:
        flat_keys: list = []
        flat_args: list = [keys, args]
        for item_keys, item_args in items:
            if len(item_keys) != keys or len(item_args) != args:
                raise ValueError(f"an item needs {keys} keys and {args} arguments")
            flat_keys.extend(item_keys)
            flat_args.extend(item_args)
        try:
            replies = await redis.execute_command("EVALSHA", sha, len(flat_keys), *flat_keys, *flat_args)
        except NoScriptError:
            replies = await redis.execute_command("EVAL", script, len(flat_keys), *flat_keys, *flat_args)
        results: list = []
        for reply in replies:
            if isinstance(reply, list) and reply and reply[0] in (b"error", "error"):
                text = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
                results.append(ResponseError(text))
            else:
                results.append(reply)
        return results

    return run
