"""The channel projection: fed by `channel.created` / `channel.updated`, read to check ownership."""

import logging

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.events.channels import Channel as ChannelPayload
from contracts.subjects import CHANNEL_CREATED, CHANNEL_UPDATED
from servicekit.problems import Problem

from streams_service.channels.models import Channel
from streams_service.schemas import clean_id
from streams_service.streams.models import Stream

log = logging.getLogger("streams.channels")

CHANNEL_EVENTS = (CHANNEL_CREATED, CHANNEL_UPDATED)


async def get(session: AsyncSession, channel_id: str) -> Channel | None:
    cid = clean_id(channel_id)
    return await session.get(Channel, cid) if cid else None


async def get_or_raise(session: AsyncSession, channel_id: str) -> Channel:
    channel = await get(session, channel_id)
    if channel is None:
        raise Problem(404, "No such channel.")
    return channel


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
    values = {"owner_id": data.owner_id, "name": data.name, "slug": data.slug, "synced_at": event.time}
    await session.exec(
        insert(Channel).values(id=data.id, **values)
        .on_conflict_do_update(index_elements=["id"], set_=values,
                               where=col(Channel.synced_at) <= event.time))
    # streams an ingest started before this projection existed get their owner now
    await session.exec(update(Stream).where(col(Stream.channel_id) == data.id, col(Stream.owner_id).is_(None))
                       .values(owner_id=data.owner_id))
