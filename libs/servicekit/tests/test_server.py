"""servicekit.server.QuietServer, the uvicorn server `python -m <service> serve` runs: it serves,
keeps the Date header fresh, stops at once on SIGTERM, and leaves the event loop asleep between
its once-a-second ticks (uvicorn's own wakes it every 0.1 s)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import httpx
import uvicorn
from devstack.ports import free_port
from servicekit.server import QuietServer


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _started(server: uvicorn.Server) -> None:
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        await asyncio.sleep(0.02)


async def test_the_quiet_server_serves_and_sleeps_between_ticks():
    port = free_port()
    server = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    await _started(server)
    async with httpx.AsyncClient() as client:
        first = await client.get(f"http://127.0.0.1:{port}/")
        assert first.status_code == 200 and first.text == "ok"

        loop = asyncio.get_running_loop()
        timers = []
        call_later = loop.call_later

        def counting(delay, callback, *args, **kwargs):
            timers.append(delay)
            return call_later(delay, callback, *args, **kwargs)

        loop.call_later = counting  # type: ignore[method-assign]
        try:
            await asyncio.sleep(2.05)
        finally:
            loop.call_later = call_later  # type: ignore[method-assign]
        ticks = [d for d in timers if d < 2.0]
        assert len(ticks) <= 3, f"the loop was woken {len(ticks)} times in 2 s: {ticks[:12]}"

        later = await client.get(f"http://127.0.0.1:{port}/")
        assert later.headers["date"] != first.headers["date"], "the Date header stood still"

    server.should_exit = True
    await asyncio.wait_for(task, 5)


SERVE = """
import sys, uvicorn
sys.path.insert(0, {tests!r})
from test_server import app
from servicekit.server import QuietServer

QuietServer.TICK_SECONDS = 10  # a stop that waited for the tick would take seconds
QuietServer(uvicorn.Config(app, host="127.0.0.1", port={port}, log_config=None)).run()
"""


async def test_a_sigterm_stops_the_quiet_server_without_waiting_for_its_tick():
    port = free_port()
    code = SERVE.format(tests=os.path.dirname(__file__), port=port)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    try:
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # inside a tick's sleep
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # uvicorn raises the signal it caught again once it has shut down (the exit says why)
        assert await asyncio.wait_for(proc.wait(), 15) in (0, -signal.SIGTERM)
        assert time.monotonic() - stopping < 2.0, "the stop waited for the end of a tick"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
