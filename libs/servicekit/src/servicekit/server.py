"""uvicorn's server with a main loop that wakes once a second, not ten times.

uvicorn's `Server.main_loop` sleeps 0.1 s at a time to look at `should_exit` and to refresh the
Date header once a second: 0.17 % of a core per idle process (bench/idle.py; five services). This
one sleeps a second (the Date header's resolution: `on_tick` gets the counter it expects, a
multiple of ten, so it refreshes the header every time) and a SIGTERM or Ctrl-C cuts the sleep
short, so a service stops as quickly as before.
"""

from __future__ import annotations

import asyncio
from types import FrameType

import uvicorn


class QuietServer(uvicorn.Server):
    TICK_SECONDS = 1.0

    async def main_loop(self) -> None:
        self._tick = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000
            try:
                await asyncio.wait_for(self._tick.wait(), self.TICK_SECONDS)
            except TimeoutError:
                pass
            self._tick.clear()
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # a signal handler runs between two bytecodes of the loop's thread: hand the wake-up to
        # the loop rather than touch the event from here
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._tick.set)
