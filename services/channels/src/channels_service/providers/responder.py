"""`channels.provider.lookup`: core NATS request/reply (queue group `channels`). Cloudflare's
live-input notifications name the input but carry no `meta`, so the media gateway asks here which
channel currently uses it. Only ids travel; never a key."""

from __future__ import annotations

import logging

from nats.aio.msg import Msg
from prometheus_client import Counter
from sqlmodel import select

from contracts.requests import ProviderLookupReply, ProviderLookupRequest
from contracts.subjects import CHANNELS_PROVIDER_LOOKUP
from servicekit.messaging import SubscriptionWorker, handling_span

from channels_service.providers.models import ProviderStream

log = logging.getLogger("channels.providers")
QUEUE_GROUP = "channels"
MAX_REQUEST_BYTES = 1024

LOOKUPS = Counter("provider_lookups_total", "Answers to channels.provider.lookup", ["outcome"])


class ProviderLookup(SubscriptionWorker):
    __name__ = "provider-lookup"

    async def subscribe(self, runtime):
        return await runtime.nats.subscribe(CHANNELS_PROVIDER_LOOKUP, queue=QUEUE_GROUP, cb=self.handle)

    async def answer(self, data: bytes) -> ProviderLookupReply:
        if len(data) > MAX_REQUEST_BYTES:
            return ProviderLookupReply(found=False)
        try:
            request = ProviderLookupRequest.model_validate_json(data)
        except ValueError:
            return ProviderLookupReply(found=False)
        async with self._runtime.db.session() as session:
            row = (await session.exec(select(ProviderStream).where(
                ProviderStream.provider == request.provider, ProviderStream.stream_id == request.stream_id))).first()
            if row is None:
                return ProviderLookupReply(found=False)
            return ProviderLookupReply(found=True, channel_id=str(row.channel_id))

    async def handle(self, msg: Msg) -> None:
        with handling_span(msg, f"answer {CHANNELS_PROVIDER_LOOKUP}"):
            try:
                reply = await self.answer(msg.data)
            except Exception as exc:
                # no reply: the media gateway answers the webhook 503 and the provider retries
                log.error("provider lookup failed", extra={"errorType": type(exc).__name__})
                LOOKUPS.labels("error").inc()
                return
            LOOKUPS.labels("found" if reply.found else "not_found").inc()
            if msg.reply:
                try:
                    await msg.respond(reply.to_json_bytes())
                except Exception as exc:
                    log.warning("could not send the provider lookup reply", extra={"errorType": type(exc).__name__})
