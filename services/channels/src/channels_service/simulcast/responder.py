"""`channels.simulcast.destinations`: core NATS request/reply (queue group `channels`). The reply
carries the destinations' keys decrypted, so nothing here logs the reply or its parse errors."""

from __future__ import annotations

import logging

from nats.aio.msg import Msg

from contracts.requests import SimulcastDestinationsRequest
from contracts.subjects import CHANNELS_SIMULCAST_DESTINATIONS
from servicekit.messaging import SubscriptionWorker, handling_span

from channels_service.simulcast import service

log = logging.getLogger("channels.simulcast")
QUEUE_GROUP = "channels"
MAX_REQUEST_BYTES = 1024


class DestinationsResponder(SubscriptionWorker):
    __name__ = "simulcast-destinations"

    async def subscribe(self, runtime):
        return await runtime.nats.subscribe(CHANNELS_SIMULCAST_DESTINATIONS, queue=QUEUE_GROUP, cb=self.handle)

    async def handle(self, msg: Msg) -> None:
        with handling_span(msg, f"answer {CHANNELS_SIMULCAST_DESTINATIONS}"):
            if len(msg.data) > MAX_REQUEST_BYTES:
                return
            try:
                request = SimulcastDestinationsRequest.model_validate_json(msg.data)
                async with self._runtime.db.session() as session:
                    reply = await service.targets(session, self._runtime.settings, request.channel_id)
            except Exception as exc:
                # no reply: the media gateway retries with backoff
                log.error("simulcast destinations lookup failed", extra={"errorType": type(exc).__name__})
                return
            if msg.reply:
                try:
                    await msg.respond(reply.to_json_bytes())
                except Exception as exc:
                    log.warning("could not send the simulcast reply", extra={"errorType": type(exc).__name__})
