"""`channels.get`: core NATS request/reply, answered by every replica through one queue group.

Streams and chat keep replicas of the channels fed by `channel.created`, which reaches them a
moment after `POST /api/channels` answered. A replica miss asks here before saying 404, so a
client that creates a channel and goes live (or chats) at once is never told it does not exist.
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg
from prometheus_client import Counter

from contracts.requests import ChannelGetReply, ChannelGetRequest
from contracts.subjects import CHANNELS_GET
from servicekit.messaging import SubscriptionWorker, handling_span

from channels_service.channels import service

log = logging.getLogger("channels.lookup")
QUEUE_GROUP = "channels"
MAX_REQUEST_BYTES = 1024

LOOKUPS = Counter("channel_lookups_total", "Answers to channels.get", ["outcome"])


class ChannelLookup(SubscriptionWorker):
    __name__ = "channel-lookup"

    async def subscribe(self, runtime):
        return await runtime.nats.subscribe(CHANNELS_GET, queue=QUEUE_GROUP, cb=self.handle)

    async def answer(self, data: bytes) -> ChannelGetReply:
        """Found or not; a request that names no usable id is about no channel that exists."""
        if len(data) > MAX_REQUEST_BYTES:
            return ChannelGetReply(found=False)
        try:
            request = ChannelGetRequest.model_validate_json(data)
        except ValueError:
            return ChannelGetReply(found=False)
        async with self._runtime.db.session() as session:
            channel = await service.get(session, request.channel_id)
            if channel is None:
                return ChannelGetReply(found=False)
            return ChannelGetReply(found=True, channel=service.payload(channel), updated_at=channel.updated_at)

    async def handle(self, msg: Msg) -> None:
        with handling_span(msg, f"answer {CHANNELS_GET}"):
            try:
                reply = await self.answer(msg.data)
            except Exception as exc:
                # no reply: the requester falls back to its replica after its timeout
                log.error("channel lookup failed", extra={"errorType": type(exc).__name__})
                LOOKUPS.labels("error").inc()
                return
            LOOKUPS.labels("found" if reply.found else "not_found").inc()
            if msg.reply:
                try:
                    await msg.respond(reply.to_json_bytes())
                except Exception as exc:
                    log.warning("could not send the channel lookup reply", extra={"errorType": type(exc).__name__})
