import uuid
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events.users import UserBlock
from servicekit.outbox import stage_event
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem

from auth_service.blocks.models import Block
from auth_service.users import service as users
from auth_service.users.models import User


async def block(session: AsyncSession, blocker_id: str, target_id: str) -> None:
    """Idempotent; `user.blocked` is published only when the block is new."""
    target = await users.get_or_raise(session, target_id)
    if str(target.id) == blocker_id:
        raise Problem(422, "You cannot block yourself.",  # API.md: every 422 names its field
                      errors=[{"field": "user_id", "message": "cannot block yourself",
                               "type": "value_error"}])
    inserted = (await session.execute(
        insert(Block).values(blocker_id=uuid.UUID(blocker_id), blocked_id=target.id)
        .on_conflict_do_nothing().returning(Block.blocked_id))).first()
    if inserted:
        await stage_event(session, "user.blocked", UserBlock(blocker_id=blocker_id, blocked_id=str(target.id)),
                          source=users.SOURCE, key=blocker_id)


async def unblock(session: AsyncSession, blocker_id: str, target_id: str) -> None:
    target = await users.get_or_raise(session, target_id)
    result = await session.execute(delete(Block).where(col(Block.blocker_id) == uuid.UUID(blocker_id),
                                                       col(Block.blocked_id) == target.id))
    if result.rowcount:
        await stage_event(session, "user.unblocked",
                          UserBlock(blocker_id=blocker_id, blocked_id=str(target.id)),
                          source=users.SOURCE, key=blocker_id)


async def list_blocked(session: AsyncSession, blocker_id: str, limit: int,
                       cursor: str | None) -> tuple[list[User], str | None]:
    """Newest blocks first, keyset-paginated on (created_at, blocked_id)."""
    stmt = (select(User, Block.created_at).join(Block, col(Block.blocked_id) == User.id)
            .where(col(Block.blocker_id) == uuid.UUID(blocker_id))
            .order_by(col(Block.created_at).desc(), col(Block.blocked_id).desc()).limit(limit + 1))
    after = decode_cursor(cursor)
    if after:
        try:
            at, last = datetime.fromisoformat(after["at"]), uuid.UUID(after["id"])
        except (KeyError, ValueError, TypeError):
            raise Problem(400, "The cursor is not valid; start again without it.") from None
        stmt = stmt.where((col(Block.created_at) < at)
                          | ((col(Block.created_at) == at) & (col(Block.blocked_id) < last)))
    rows = (await session.exec(stmt)).all()
    next_cursor = None
    if len(rows) > limit:
        user, at = rows[limit - 1]
        next_cursor = encode_cursor({"at": at.isoformat(), "id": str(user.id)})
        rows = rows[:limit]
    return [u for u, _ in rows], next_cursor
