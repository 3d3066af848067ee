"""The channel projection: fed by `channel.created` / `channel.updated`, read to check ownership.

The events reach the projection a moment after `POST /api/channels` answered. So that a client
that creates a channel and goes live at once is not told the channel does not exist, a miss asks
the owner (`channels.get`, `ChannelLookup`) and records the answer as the event would have."""

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.events.channels import Channel as ChannelPayload
from contracts.requests import CHANNEL_GET, ChannelGetRequest
from contracts.subjects import CHANNEL_CREATED, CHANNEL_UPDATED
from servicekit.messaging import NoAnswer, ask
from servicekit.problems import Problem

from streams_service.channels.models import Channel
from streams_service.schemas import clean_id
from streams_service.streams.models import Stream

log = logging.getLogger("streams.channels")

CHANNEL_EVENTS = (CHANNEL_CREATED, CHANNEL_UPDATED)


@dataclass(frozen=True)
class ChannelLookup:
    """How to ask the channels service about a channel the projection has not heard of."""

    nc: object
    timeout: float

    async def fetch(self, session: AsyncSession, channel_id: str) -> Channel | None:
        """The channel as channels knows it, recorded in the projection; None when channels says
        it does not exist or does not answer (then the projection's answer, 404, stands)."""
        try:
            reply = await ask(self.nc, CHANNEL_GET, ChannelGetRequest(channel_id=channel_id), timeout=self.timeout)
        except NoAnswer as exc:
            log.warning("channel lookup unanswered; answering from the projection",
                        extra={"channelId": channel_id, "reason": str(exc)})
            return None
        if not reply.found:
            return None
        await record(session, reply.channel, reply.updated_at)
        return await session.get(Channel, channel_id, populate_existing=True)


async def get(session: AsyncSession, channel_id: str, lookup: ChannelLookup | None = None) -> Channel | None:
    cid = clean_id(channel_id)
    if cid is None:
        return None
    channel = await session.get(Channel, cid)
    if channel is None and lookup is not None:
        channel = await lookup.fetch(session, cid)
    return channel


async def get_or_raise(session: AsyncSession, channel_id: str, lookup: ChannelLookup | None = None) -> Channel:
    channel = await get(session, channel_id, lookup)
    if channel is None:
        raise Problem(404, "No such channel.")
    return channel


async def record(session: AsyncSession, data: ChannelPayload, at: datetime) -> None:
    """Upsert the projection row with the state of `at`; a row already newer than `at` is kept,
    so the event and a lookup may record the same channel in either order."""
    values = {"owner_id": data.owner_id, "name": data.name, "slug": data.slug, "synced_at": at}
    await session.exec(
        insert(Channel).values(id=data.id, **values)
        .on_conflict_do_update(index_elements=["id"], set_=values, where=col(Channel.synced_at) <= at))
    # streams an ingest started before this projection existed get their owner now
    await session.exec(update(Stream).where(col(Stream.channel_id) == data.id, col(Stream.owner_id).is_(None))
                       .values(owner_id=data.owner_id))


def require_owner(channel: Channel, user_id: str) -> None:
    if channel.owner_id != user_id:
        raise Problem(403, "Only the channel's owner can do this.")


async def handle_channel_event(session: AsyncSession, event: Envelope) -> None:
    """InboxConsumer handler: upsert the projection; an event older than the row is ignored."""
    if event.type not in CHANNEL_EVENTS or not isinstance(event.data, ChannelPayload):
        return
    data = event.data
    if clean_id(data.id) is None:
        log.warning("channel event with an unusable id ignored", extra={"eventId": event.id})
        return
    await record(session, data, event.time)
