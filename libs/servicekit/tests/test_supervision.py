"""Background tasks are supervised (issue 14, item 9): one that raises is restarted with backoff,
and the failure shows in the log and in /readyz until the task runs well again."""

from __future__ import annotations

import asyncio
import logging

import httpx
from servicekit.app import ServiceRuntime, create_app
from servicekit.settings import ServiceSettings


async def test_a_task_that_raises_is_restarted_and_reported_in_the_log_and_readyz(nats_url, eventually,
                                                                                  caplog):
    settings = ServiceSettings(service_name="supervised", nats_url=nats_url,
                               task_restart_backoff_seconds=0.05, task_restart_max_backoff_seconds=0.2,
                               task_healthy_after_seconds=0.3)
    runtime = ServiceRuntime(settings, uses_db=False, uses_redis=False)
    calls = []
    broken = True
    stopped = asyncio.Event()

    async def flaky(rt: ServiceRuntime) -> None:
        calls.append(1)
        if broken:
            raise RuntimeError("projection exploded")
        await stopped.wait()

    flaky.__name__ = "flaky-projection"
    runtime.add_worker(flaky, stop=stopped.set)
    app = create_app(runtime, title="t", description="t", routers=[], configure_process=False)
    caplog.set_level(logging.ERROR, logger="servicekit")

    async def readyz() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/readyz")

    async with app.router.lifespan_context(app):
        await eventually(lambda: len(calls) >= 3, timeout=10, message="restarted after each failure")
        answer = await readyz()
        assert answer.status_code == 503
        assert "flaky-projection" in answer.json()["detail"]
        assert "RuntimeError" in answer.json()["detail"]
        failures = [r for r in caplog.records if getattr(r, "task", None) == "flaky-projection"]
        assert failures and failures[0].levelno == logging.ERROR and failures[0].exc_info is not None

        broken = False  # the next restart runs well: ready again once it has kept running a while

        async def ready() -> bool:
            return (await readyz()).status_code == 200

        await eventually(ready, timeout=10, message="ready again")
    assert stopped.is_set()


async def test_a_task_that_returns_is_not_restarted(nats_url, eventually):
    settings = ServiceSettings(service_name="supervised", nats_url=nats_url,
                               task_restart_backoff_seconds=0.05)
    runtime = ServiceRuntime(settings, uses_db=False, uses_redis=False)
    calls = []

    async def one_shot(rt: ServiceRuntime) -> None:
        calls.append(1)

    runtime.add_worker(one_shot)
    await runtime.start()
    try:
        await eventually(lambda: calls, timeout=5, message="ran")
        await asyncio.sleep(0.3)  # several backoffs: a restart would have happened by now
        assert calls == [1]
    finally:
        await runtime.stop()
