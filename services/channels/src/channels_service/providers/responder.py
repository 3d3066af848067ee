"""`channels.provider.lookup`: core NATS request/reply (queue group `channels`). Cloudflare's
live-input notifications name the input but carry no `meta`, so the media gateway asks here which
channel currently uses it. Only ids travel; never a key."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from sqlmodel import select

from contracts.requests import PROVIDER_LOOKUP, ProviderLookupReply, ProviderLookupRequest
from servicekit.responder import MalformedRequest, Responder

from channels_service.providers.models import ProviderStream

log = logging.getLogger("channels.providers")

LOOKUPS = Counter("provider_lookups_total", "Answers to channels.provider.lookup", ["outcome"])


class ProviderLookup(Responder[ProviderLookupRequest, ProviderLookupReply]):
    # a failed lookup is not answered (reply_to_failure): the media gateway answers the webhook
    # 503 and the provider retries
    __name__ = "provider-lookup"
    spec = PROVIDER_LOOKUP
    queue = "channels"
    what = "provider lookup"
    logger = log

    def reply_to_malformed(self, problem: MalformedRequest) -> ProviderLookupReply:
        return ProviderLookupReply(found=False)

    async def handle_request(self, request: ProviderLookupRequest) -> ProviderLookupReply:
        async with self.runtime.db.session() as session:
            row = (await session.exec(select(ProviderStream).where(
                ProviderStream.provider == request.provider, ProviderStream.stream_id == request.stream_id))).first()
            if row is None:
                return ProviderLookupReply(found=False)
            return ProviderLookupReply(found=True, channel_id=str(row.channel_id))

    def answered(self, reply: ProviderLookupReply | None) -> None:
        LOOKUPS.labels("error" if reply is None else "found" if reply.found else "not_found").inc()
