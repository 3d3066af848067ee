"""`channels.get`: core NATS request/reply, answered by every replica through one queue group.

Streams and chat keep replicas of the channels fed by `channel.created`, which reaches them a
moment after `POST /api/channels` answered. A replica miss asks here before saying 404, so a
client that creates a channel and goes live (or chats) at once is never told it does not exist.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from contracts.requests import CHANNEL_GET, ChannelGetReply, ChannelGetRequest
from servicekit.responder import MalformedRequest, Responder

from channels_service.channels import service

log = logging.getLogger("channels.lookup")

LOOKUPS = Counter("channel_lookups_total", "Answers to channels.get", ["outcome"])


class ChannelLookup(Responder[ChannelGetRequest, ChannelGetReply]):
    # a failed lookup is not answered (reply_to_failure): the requester falls back to its replica
    # after its timeout
    __name__ = "channel-lookup"
    spec = CHANNEL_GET
    queue = "channels"
    what = "channel lookup"
    logger = log

    def reply_to_malformed(self, problem: MalformedRequest) -> ChannelGetReply:
        # a request that names no usable id is about no channel that exists
        return ChannelGetReply(found=False)

    async def handle_request(self, request: ChannelGetRequest) -> ChannelGetReply:
        async with self.runtime.db.session() as session:
            channel = await service.get(session, request.channel_id)
            if channel is None:
                return ChannelGetReply(found=False)
            return ChannelGetReply(found=True, channel=service.payload(channel), updated_at=channel.updated_at)

    def answered(self, reply: ChannelGetReply | None) -> None:
        LOOKUPS.labels("error" if reply is None else "found" if reply.found else "not_found").inc()
