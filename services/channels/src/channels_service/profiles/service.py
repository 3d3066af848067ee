"""The local user-profile cache: upserted from auth's events, read for creator cards and lists."""

import logging
import uuid

from sqlalchemy import func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.events.users import UserProfile

from channels_service.profiles.models import CachedProfile
from channels_service.schemas import UserSummary, parse_uuid

log = logging.getLogger("channels.profiles")
USER_EVENTS = ("user.registered", "user.updated")


async def handle_user_event(session: AsyncSession, event: Envelope) -> None:
    """Idempotent upsert (the inbox already drops redeliveries; `event_time` drops stale ones)."""
    if event.type not in USER_EVENTS or not isinstance(event.data, UserProfile):
        return
    data: UserProfile = event.data
    user_id = parse_uuid(data.user_id)
    if user_id is None:
        log.warning("user event with a non-UUID user id ignored", extra={"eventId": event.id})
        return
    stmt = insert(CachedProfile).values(user_id=user_id, username=data.username,
                                        display_name=data.display_name, avatar=data.avatar,
                                        event_time=event.time)
    excluded = stmt.excluded
    table = CachedProfile.__table__
    await session.exec(stmt.on_conflict_do_update(
        index_elements=[table.c.user_id],
        set_={"username": excluded.username, "display_name": excluded.display_name,
              "avatar": excluded.avatar, "event_time": excluded.event_time, "updated_at": func.now()},
        where=or_(table.c.event_time.is_(None), table.c.event_time <= excluded.event_time),
    ))


async def seed_from_token(session: AsyncSession, user_id: uuid.UUID, username: str | None) -> None:
    """Remember the username an access token vouches for, until auth's event brings the rest."""
    if not username:
        return
    await session.exec(insert(CachedProfile).values(user_id=user_id, username=username)
                          .on_conflict_do_nothing(index_elements=["user_id"]))


def summary(user_id: uuid.UUID, profile: CachedProfile | None) -> UserSummary:
    if profile is None:
        return UserSummary(id=str(user_id))
    return UserSummary(id=str(user_id), username=profile.username, display_name=profile.display_name,
                       avatar=profile.avatar)


async def get(session: AsyncSession, user_id: uuid.UUID) -> CachedProfile | None:
    return await session.get(CachedProfile, user_id)

