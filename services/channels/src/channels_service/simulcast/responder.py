"""`channels.simulcast.destinations`: core NATS request/reply (queue group `channels`). The reply
carries the destinations' keys decrypted, so nothing here logs the reply or its parse errors."""

from __future__ import annotations

import logging

from contracts.requests import SIMULCAST_DESTINATIONS, SimulcastDestinationsReply, SimulcastDestinationsRequest
from servicekit.responder import MalformedRequest, Responder

from channels_service.simulcast import service

log = logging.getLogger("channels.simulcast")


class DestinationsResponder(Responder[SimulcastDestinationsRequest, SimulcastDestinationsReply]):
    # nothing failed is answered (reply_to_malformed, reply_to_failure): the media gateway retries
    # with backoff
    __name__ = "simulcast-destinations"
    spec = SIMULCAST_DESTINATIONS
    queue = "channels"
    what = "simulcast destinations lookup"
    logger = log

    def reply_to_malformed(self, problem: MalformedRequest) -> None:
        # a body that does not parse is the media gateway's bug: logged as a failed lookup (its
        # type only: the text would quote the body); a too large one is dropped unlogged
        if problem.error_type is not None:
            log.error("simulcast destinations lookup failed", extra={"errorType": problem.error_type})
        return None

    async def handle_request(self, request: SimulcastDestinationsRequest) -> SimulcastDestinationsReply:
        async with self.runtime.db.session() as session:
            return await service.targets(session, self.runtime.settings, request.channel_id)
