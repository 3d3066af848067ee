"""The service's durable JetStream consumers (inbox-backed: every event takes effect once)."""

from __future__ import annotations

import asyncio
import logging

from contracts.subjects import EVENTS_STREAM
from servicekit.inbox import Handler, InboxConsumer

from streams_service.channels.service import CHANNEL_EVENTS, handle_channel_event
from streams_service.config import Settings
from streams_service.ingest.service import MEDIA_EVENTS, make_media_handler

log = logging.getLogger("streams.consumers")

CHANNELS_CONSUMER = "streams-channels"
MEDIA_CONSUMER = "streams-media"


class ConsumerWorker:
    """One `InboxConsumer` for the life of the process; it is built again after a failure."""

    def __init__(self, name: str, subjects: tuple[str, ...], handler: Handler):
        self.__name__ = name
        self.name = name
        self.subjects = subjects
        self.handler = handler
        self.consumer: InboxConsumer | None = None
        self._stopped = asyncio.Event()

    async def __call__(self, runtime) -> None:
        while not self._stopped.is_set():
            consumer = InboxConsumer(runtime.db, runtime.js, name=self.name, stream=EVENTS_STREAM.name,
                                     subjects=self.subjects, handler=self.handler)
            self.consumer = consumer
            try:
                await consumer.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer failed; starting it again", extra={"consumer": self.name,
                                                                         "error": repr(exc)})
                try:
                    await asyncio.wait_for(self._stopped.wait(), 1)
                except TimeoutError:
                    pass
            finally:
                # let go of the pull subscription: left open, a late reply to the last fetch
                # would keep the connection's drain at shutdown waiting for its whole timeout
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


def consumers(settings: Settings) -> list[ConsumerWorker]:
    return [
        ConsumerWorker(CHANNELS_CONSUMER, CHANNEL_EVENTS, handle_channel_event),
        ConsumerWorker(MEDIA_CONSUMER, MEDIA_EVENTS, make_media_handler(settings)),
    ]
