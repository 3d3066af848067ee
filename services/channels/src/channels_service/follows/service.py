"""Follows: idempotent, counted on the channel row, announced only when the state changed."""

import uuid

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events.channels import ChannelFollow as FollowEvent
from servicekit.outbox import stage_event
from servicekit.problems import Problem

from channels_service.channels.models import Channel
from channels_service.channels.service import SOURCE
from channels_service.follows.models import ChannelFollow


async def follow(session: AsyncSession, channel: Channel, user_id: uuid.UUID) -> None:
    if channel.owner_id == user_id:
        raise Problem(422, "You cannot follow your own channel.",
                      errors=[{"field": "channel_id", "message": "is your own channel",
                               "type": "value_error"}])
    inserted = (await session.exec(
        insert(ChannelFollow).values(channel_id=channel.id, user_id=user_id)
        .on_conflict_do_nothing().returning(ChannelFollow.user_id))).first()
    if inserted:
        await session.exec(update(Channel).where(col(Channel.id) == channel.id)
                              .values(follower_count=Channel.follower_count + 1))
        await stage_event(session, "channel.followed",
                          FollowEvent(channel_id=str(channel.id), user_id=str(user_id)),
                          source=SOURCE, key=str(channel.id))


async def unfollow(session: AsyncSession, channel: Channel, user_id: uuid.UUID) -> None:
    result = await session.exec(delete(ChannelFollow).where(col(ChannelFollow.channel_id) == channel.id,
                                                               col(ChannelFollow.user_id) == user_id))
    if result.rowcount:
        await session.exec(update(Channel).where(col(Channel.id) == channel.id)
                              .values(follower_count=Channel.follower_count - 1))
        await stage_event(session, "channel.unfollowed",
                          FollowEvent(channel_id=str(channel.id), user_id=str(user_id)),
                          source=SOURCE, key=str(channel.id))


async def is_following(session: AsyncSession, channel_id: uuid.UUID, user_id: uuid.UUID | None) -> bool:
    if user_id is None:
        return False
    return (await session.exec(select(ChannelFollow.user_id).where(
        ChannelFollow.channel_id == channel_id, ChannelFollow.user_id == user_id))).first() is not None
