"""User-to-user follows. No event is published: no other service reads them yet (docs/architecture.md)."""

import uuid
from datetime import datetime

from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from auth_service.follows.models import Follow
from auth_service.users import service as users
from auth_service.users.models import User


async def follow(session: AsyncSession, follower_id: str, target_ref: str) -> User:
    """Idempotent: following someone already followed changes nothing."""
    target = await users.get_by_id_or_username_or_raise(session, target_ref)
    if str(target.id) == follower_id:
        raise Problem(422, "You cannot follow yourself.",  # API.md: every 422 names its field
                      errors=[{"field": "user_id", "message": "cannot follow yourself", "type": "value_error"}])
    await session.execute(insert(Follow).values(follower_id=uuid.UUID(follower_id), followee_id=target.id)
                          .on_conflict_do_nothing())
    return target


async def unfollow(session: AsyncSession, follower_id: str, target_ref: str) -> User:
    target = await users.get_by_id_or_username_or_raise(session, target_ref)
    await session.execute(delete(Follow).where(col(Follow.follower_id) == uuid.UUID(follower_id),
                                               col(Follow.followee_id) == target.id))
    return target


async def counts(session: AsyncSession, user_id: uuid.UUID) -> tuple[int, int]:
    """(followers, following) of a user."""
    followers = (await session.exec(select(func.count()).select_from(Follow)
                                    .where(col(Follow.followee_id) == user_id))).one()
    following = (await session.exec(select(func.count()).select_from(Follow)
                                    .where(col(Follow.follower_id) == user_id))).one()
    return followers, following


async def is_following(session: AsyncSession, follower_id: str, user_id: uuid.UUID) -> bool:
    return (await session.get(Follow, (uuid.UUID(follower_id), user_id))) is not None


async def list_users(session: AsyncSession, user_id: uuid.UUID, *, followers: bool, limit: int,
                     cursor: str | None) -> tuple[list[User], str | None]:
    """A user's followers (or the users they follow), newest first, keyset-paginated on
    (created_at, other user's id)."""
    this, other = (Follow.followee_id, Follow.follower_id) if followers else (Follow.follower_id, Follow.followee_id)
    stmt = (select(User, Follow.created_at).join(Follow, col(other) == User.id)
            .where(col(this) == user_id)
            .order_by(col(Follow.created_at).desc(), col(other).desc()).limit(limit + 1))
    after = decode_cursor(cursor)
    if after:
        try:
            at, last = datetime.fromisoformat(after["at"]), uuid.UUID(after["id"])
        except (KeyError, ValueError, TypeError):
            raise Problem(400, "The cursor is not valid; start again without it.") from None
        stmt = stmt.where((col(Follow.created_at) < at)
                          | ((col(Follow.created_at) == at) & (col(other) < last)))
    rows = (await session.exec(stmt)).all()
    next_cursor = None
    if len(rows) > limit:
        user, at = rows[limit - 1]
        next_cursor = encode_cursor({"at": at.isoformat(), "id": str(user.id)})
        rows = rows[:limit]
    return [u for u, _ in rows], next_cursor
