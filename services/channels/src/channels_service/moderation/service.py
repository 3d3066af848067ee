"""Moderation: chat filters, moderators and bans. The owner has every power; moderators may
change filters and ban; only the owner appoints moderators."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events import channels as events
from servicekit.outbox import stage_event
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem

from channels_service.channels.models import Channel
from channels_service.channels.service import SOURCE
from channels_service.moderation.models import (Ban, BanCreate, ChannelBan, ChannelFilters, ChannelModerator,
                                                FiltersUpdate, Moderator)
from channels_service.profiles import service as profiles
from channels_service.profiles.models import CachedProfile
from channels_service.schemas import dedupe


async def is_moderator(session: AsyncSession, channel_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return (await session.exec(select(ChannelModerator.user_id).where(
        ChannelModerator.channel_id == channel_id, ChannelModerator.user_id == user_id))).first() is not None


async def can_moderate(session: AsyncSession, channel: Channel, user_id: uuid.UUID | None) -> bool:
    if user_id is None:
        return False
    return channel.owner_id == user_id or await is_moderator(session, channel.id, user_id)


async def require_moderator(session: AsyncSession, channel: Channel, user_id: uuid.UUID, action: str) -> None:
    if not await can_moderate(session, channel, user_id):
        raise Problem(403, f"Only the channel's owner or a moderator can {action}.")


# ---- filters -----------------------------------------------------------------------------------

async def create_default_filters(session: AsyncSession, channel_id: uuid.UUID) -> None:
    await session.exec(insert(ChannelFilters).values(channel_id=channel_id)
                          .on_conflict_do_nothing(index_elements=["channel_id"]))


async def get_filters(session: AsyncSession, channel_id: uuid.UUID, *, lock: bool = False) -> ChannelFilters:
    row = await session.get(ChannelFilters, channel_id, with_for_update=lock or None)
    if row is None:
        await create_default_filters(session, channel_id)
        row = await session.get(ChannelFilters, channel_id, with_for_update=lock or None)
    return row


async def update_filters(session: AsyncSession, channel: Channel, changes: FiltersUpdate) -> ChannelFilters:
    row = await get_filters(session, channel.id, lock=True)
    values = changes.model_dump(exclude_unset=True)
    if "banned_words" in values:
        values["banned_words"] = dedupe([w.lower() for w in values["banned_words"]])
    for field, value in values.items():
        setattr(row, field, value)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await stage_event(session, "channel.filters_updated", events.ChannelFilters(
        channel_id=str(channel.id), banned_words=list(row.banned_words),
        profanity_filter=row.profanity_filter, slow_mode_seconds=row.slow_mode_seconds,
        followers_only=row.followers_only, subscribers_only=bool(row.subscribers_only),
    ), source=SOURCE, key=str(channel.id))
    return row


# ---- moderators --------------------------------------------------------------------------------

async def add_moderator(session: AsyncSession, channel: Channel, user_id: uuid.UUID, by: uuid.UUID) -> None:
    if user_id == channel.owner_id:
        raise Problem(422, "The owner already has every moderator power.",
                      errors=[{"field": "user_id", "message": "is the owner", "type": "value_error"}])
    inserted = (await session.exec(
        insert(ChannelModerator).values(channel_id=channel.id, user_id=user_id, added_by=by)
        .on_conflict_do_nothing().returning(ChannelModerator.user_id))).first()
    if inserted:
        await stage_event(session, "channel.moderator_added",
                          events.ChannelModerator(channel_id=str(channel.id), user_id=str(user_id)),
                          source=SOURCE, key=str(channel.id))


async def remove_moderator(session: AsyncSession, channel: Channel, user_id: uuid.UUID) -> None:
    result = await session.exec(delete(ChannelModerator).where(
        col(ChannelModerator.channel_id) == channel.id, col(ChannelModerator.user_id) == user_id))
    if result.rowcount:
        await stage_event(session, "channel.moderator_removed",
                          events.ChannelModerator(channel_id=str(channel.id), user_id=str(user_id)),
                          source=SOURCE, key=str(channel.id))


async def list_moderators(session: AsyncSession, channel: Channel) -> list[Moderator]:
    rows = (await session.exec(
        select(ChannelModerator, CachedProfile)
        .outerjoin(CachedProfile, col(CachedProfile.user_id) == ChannelModerator.user_id)
        .where(ChannelModerator.channel_id == channel.id)
        .order_by(col(ChannelModerator.created_at), col(ChannelModerator.user_id)))).all()
    return [Moderator(user=profiles.summary(m.user_id, p), added_at=m.created_at) for m, p in rows]


# ---- bans --------------------------------------------------------------------------------------

def _active(now: datetime):
    return or_(col(ChannelBan.until).is_(None), col(ChannelBan.until) > now)


async def ban(session: AsyncSession, channel: Channel, data: BanCreate, by: uuid.UUID,
              max_seconds: int) -> Ban:
    """Ban (no duration) or time out a user. Banning again replaces the earlier ban's terms."""
    target = data.user_id
    if target == channel.owner_id:
        raise Problem(422, "The channel's owner cannot be banned.",
                      errors=[{"field": "userId", "message": "is the owner", "type": "value_error"}])
    if target == by:
        raise Problem(422, "You cannot ban yourself.",
                      errors=[{"field": "userId", "message": "is you", "type": "value_error"}])
    if data.duration_seconds is not None and data.duration_seconds > max_seconds:
        raise Problem(422, "The request is not valid.", errors=[{
            "field": "durationSeconds", "message": f"at most {max_seconds}", "type": "less_than_equal"}])
    if by != channel.owner_id and await is_moderator(session, channel.id, target):
        raise Problem(403, "Only the channel's owner can ban a moderator.")
    now = datetime.now(UTC)
    until = now + timedelta(seconds=data.duration_seconds) if data.duration_seconds else None
    values = {"banned_by": by, "reason": data.reason or None, "until": until, "created_at": now}
    stmt = insert(ChannelBan).values(channel_id=channel.id, user_id=target, **values)
    await session.exec(stmt.on_conflict_do_update(index_elements=["channel_id", "user_id"], set_=values))
    await stage_event(session, "channel.user_banned", events.ChannelBan(
        channel_id=str(channel.id), user_id=str(target), until=until, reason=values["reason"],
    ), source=SOURCE, key=str(channel.id))
    row = await session.get(ChannelBan, (channel.id, target), populate_existing=True)
    return _ban_out(row, profiles.summary(target, await profiles.get(session, target)))


async def unban(session: AsyncSession, channel: Channel, user_id: uuid.UUID) -> None:
    result = await session.exec(delete(ChannelBan).where(col(ChannelBan.channel_id) == channel.id,
                                                            col(ChannelBan.user_id) == user_id))
    if result.rowcount:
        await stage_event(session, "channel.user_unbanned",
                          events.ChannelUnban(channel_id=str(channel.id), user_id=str(user_id)),
                          source=SOURCE, key=str(channel.id))


def _ban_out(row: ChannelBan, user) -> Ban:
    return Ban(channel_id=str(row.channel_id), user_id=str(row.user_id), user=user, reason=row.reason,
               until=row.until, banned_by=str(row.banned_by), created_at=row.created_at)


async def list_bans(session: AsyncSession, channel: Channel, limit: int,
                    cursor: str | None) -> tuple[list[Ban], str | None]:
    """Bans and running timeouts, newest first, keyset-paginated on (created_at, user_id)."""
    stmt = (select(ChannelBan, CachedProfile)
            .outerjoin(CachedProfile, col(CachedProfile.user_id) == ChannelBan.user_id)
            .where(ChannelBan.channel_id == channel.id, _active(datetime.now(UTC)))
            .order_by(col(ChannelBan.created_at).desc(), col(ChannelBan.user_id).desc()).limit(limit + 1))
    after = decode_cursor(cursor)
    if after:
        try:
            at, last = datetime.fromisoformat(after["at"]), uuid.UUID(after["id"])
        except (KeyError, ValueError, TypeError):
            raise Problem(400, "The cursor is not valid; start again without it.") from None
        stmt = stmt.where((col(ChannelBan.created_at) < at)
                          | ((col(ChannelBan.created_at) == at) & (col(ChannelBan.user_id) < last)))
    rows = (await session.exec(stmt)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last_ban = rows[-1][0]
        next_cursor = encode_cursor({"at": last_ban.created_at.isoformat(), "id": str(last_ban.user_id)})
    return [_ban_out(b, profiles.summary(b.user_id, p)) for b, p in rows], next_cursor
