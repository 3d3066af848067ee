"""The service's durable JetStream consumers (inbox-backed, so every event takes effect once)."""

from __future__ import annotations

import asyncio
import logging

from contracts.subjects import EVENTS_STREAM
from servicekit.inbox import Handler, InboxConsumer

from channels_service.live.service import STREAM_EVENTS, handle_stream_event
from channels_service.profiles.service import USER_EVENTS, handle_user_event

log = logging.getLogger("channels.consumers")


class ConsumerWorker:
    """Runs one `InboxConsumer` for the life of the process; resubscribes after a failure."""

    def __init__(self, name: str, subjects: tuple[str, ...], handler: Handler):
        self.__name__ = name
        self.name = name
        self.subjects = subjects
        self.handler = handler
        self.consumer: InboxConsumer | None = None
        self._stopped = asyncio.Event()

    async def __call__(self, runtime) -> None:
        while not self._stopped.is_set():
            self.consumer = InboxConsumer(runtime.db, runtime.js, name=self.name, stream=EVENTS_STREAM.name,
                                          subjects=self.subjects, handler=self.handler)
            if self._stopped.is_set():
                return
            try:
                await self.consumer.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer stopped; restarting", extra={"consumer": self.name, "error": repr(exc)})
                try:
                    await asyncio.wait_for(self._stopped.wait(), 1)
                except TimeoutError:
                    pass
            finally:
                await self._release(self.consumer)

    @staticmethod
    async def _release(consumer: InboxConsumer) -> None:
        """Drop the pull subscription's inbox (the durable consumer stays). Left in place, a late
        status reply to the last fetch sits in its queue and `nc.drain()` at shutdown waits its
        full 30 s timeout for someone to read it."""
        sub = getattr(consumer, "_sub", None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                pass

    def stop(self) -> None:
        self._stopped.set()
        if self.consumer is not None:
            self.consumer.stop()


def consumers() -> list[ConsumerWorker]:
    return [
        ConsumerWorker("channels-user-profiles", USER_EVENTS, handle_user_event),
        ConsumerWorker("channels-stream-state", STREAM_EVENTS, handle_stream_event),
    ]
