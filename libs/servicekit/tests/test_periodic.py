"""servicekit.periodic.every on the real event loop: a pass, then one every interval; a failed pass
logged and the loop going on (or ending it, without a logger); stop ending the loop at once, also
in the middle of a long wait; a cancel never taken for a failed pass."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from servicekit.periodic import every

log = logging.getLogger("test.periodic")


async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def _ended(task: asyncio.Task, within: float = 1.0):
    """What the loop returned (or raised) once it ended by itself; fails when it did not within
    `within` s. asyncio.wait, not wait_for: a loop that swallowed its cancel would hang wait_for."""
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
        raise AssertionError(f"the loop did not end within {within}s")
    return task.result()


async def test_a_pass_runs_at_once_and_again_after_each_interval():
    stop = asyncio.Event()
    passes: list[float] = []

    async def step():
        passes.append(time.monotonic())

    started = time.monotonic()
    task = asyncio.create_task(every(0.1, step, stop, log=log))
    await _until(lambda: len(passes) >= 3)
    stop.set()
    await _ended(task)
    assert passes[0] - started < 0.1  # the first pass does not wait for an interval
    gaps = [b - a for a, b in zip(passes, passes[1:], strict=False)]
    assert all(gap >= 0.095 for gap in gaps), gaps  # and the next ones do


async def test_a_failed_pass_is_logged_and_the_next_one_still_runs(caplog):
    stop = asyncio.Event()
    passes = []

    async def step():
        passes.append(1)
        if len(passes) == 1:
            raise RuntimeError("database went away")

    caplog.set_level(logging.WARNING, logger="test.periodic")
    task = asyncio.create_task(every(0.02, step, stop, log=log, failed="renewal pass failed"))
    await _until(lambda: len(passes) >= 3)
    stop.set()
    await _ended(task)
    [record] = [r for r in caplog.records if r.name == "test.periodic"]
    assert (record.levelno, record.getMessage()) == (logging.WARNING, "renewal pass failed")
    assert record.error == repr(RuntimeError("database went away"))


async def test_without_a_logger_a_failed_pass_ends_the_loop_for_the_supervisor():
    passes = []

    async def step():
        passes.append(1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await _ended(asyncio.create_task(every(0.01, step, asyncio.Event())))
    assert passes == [1]


async def test_stop_ends_the_loop_in_the_middle_of_a_long_wait():
    stop = asyncio.Event()
    passes = []

    async def step():
        passes.append(1)

    task = asyncio.create_task(every(3600, step, stop, log=log))
    await _until(lambda: passes)
    await asyncio.sleep(0.05)  # well into the wait
    asked = time.monotonic()
    stop.set()
    await _ended(task)
    assert time.monotonic() - asked < 0.5 and passes == [1]


async def test_a_stop_during_a_pass_ends_the_loop_after_it_without_waiting():
    stop = asyncio.Event()
    passes = []

    async def step():
        passes.append(1)
        stop.set()

    await _ended(asyncio.create_task(every(3600, step, stop, log=log)))
    assert passes == [1]


async def test_a_stopped_worker_runs_no_pass():
    stop = asyncio.Event()
    stop.set()
    passes = []

    async def step():
        passes.append(1)

    await _ended(asyncio.create_task(every(0.01, step, stop, log=log)))
    assert passes == []


async def test_cancelling_the_task_in_a_pass_is_not_a_failed_pass(caplog):
    stop = asyncio.Event()
    entered = asyncio.Event()

    async def step():
        entered.set()
        await asyncio.sleep(3600)

    caplog.set_level(logging.WARNING, logger="test.periodic")
    task = asyncio.create_task(every(0.01, step, stop, log=log))
    await asyncio.wait_for(entered.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await _ended(task)
    assert [r for r in caplog.records if r.name == "test.periodic"] == []


async def test_an_interval_given_as_a_function_is_asked_after_every_pass():
    stop = asyncio.Event()
    passes: list[float] = []
    waits = iter([0.05, 0.3, 0.05])

    async def step():
        passes.append(time.monotonic())

    task = asyncio.create_task(every(lambda: next(waits, 10.0), step, stop, log=log))
    await _until(lambda: len(passes) >= 4)
    stop.set()
    await _ended(task)
    gaps = [b - a for a, b in zip(passes, passes[1:], strict=False)]
    assert 0.045 <= gaps[0] < 0.25 and gaps[1] >= 0.295 and 0.045 <= gaps[2] < 0.25, gaps
