"""Filing and handling reports; `chat.report.created` goes out through the outbox."""

import uuid
from datetime import UTC, datetime

from contracts.events.chat import ChatReport
from servicekit.outbox import stage_event
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem
from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chat_service.messages.service import ChatService
from chat_service.reports.models import Report, ReportCreate, ReportStatus


async def create(session: AsyncSession, chat: ChatService, reporter_id: str, body: ReportCreate) -> Report:
    try:
        room = await chat.resolve_room(channel_id=body.channel_id)
    except LookupError:
        raise Problem(404, "No such channel.") from None
    user_id = body.user_id
    if body.message_id is not None:
        message = await chat.message(body.message_id)
        if message is None or message["channelId"] != room.channel_id:
            raise Problem(404, "No such message in this channel.")
        user_id = user_id or message["user"]["id"]
    report = Report(channel_id=room.channel_id, reporter_id=reporter_id,
                    message_id=str(uuid.UUID(body.message_id)) if body.message_id else None,
                    user_id=user_id, reason=body.reason, created_at=datetime.now(UTC))
    session.add(report)
    await stage_event(session, "chat.report.created", ChatReport(
        id=str(report.id), channel_id=report.channel_id, reporter_id=reporter_id, message_id=report.message_id,
        user_id=report.user_id, reason=report.reason, created_at=report.created_at),
        source="chat", key=report.channel_id)
    return report


async def is_moderator(chat: ChatService, channel_id: str, user_id: str) -> bool:
    """Owner or moderator of the channel (False for a channel chat does not know)."""
    state = await chat.moderation.channel(channel_id)
    return state is not None and state.is_privileged(user_id)


async def require_moderator(chat: ChatService, channel_id: str, user_id: str) -> None:
    """404 for a channel chat does not know, 403 unless owner or moderator."""
    try:
        await chat.resolve_room(channel_id=channel_id)
    except LookupError:
        raise Problem(404, "No such channel.") from None
    if not await is_moderator(chat, channel_id, user_id):
        raise Problem(403, "Only the channel's owner or a moderator can see its reports.")


async def list_for_channel(session: AsyncSession, chat: ChatService, caller_id: str, channel_id: str, *,
                           status: ReportStatus | None, limit: int, cursor: str | None
                           ) -> tuple[list[Report], str | None]:
    """Newest first; the cursor holds the last row's (createdAt, id)."""
    await require_moderator(chat, channel_id, caller_id)
    query = select(Report).where(col(Report.channel_id) == channel_id)
    if status is not None:
        query = query.where(col(Report.status) == status.value)
    after = decode_cursor(cursor)
    if after is not None:
        try:
            at, rid = datetime.fromisoformat(after["t"]), uuid.UUID(after["id"])
        except (KeyError, TypeError, ValueError):
            raise Problem(400, "The cursor is not valid; start again without it.") from None
        query = query.where(or_(col(Report.created_at) < at,
                                and_(col(Report.created_at) == at, col(Report.id) < rid)))
    rows = list((await session.exec(query.order_by(col(Report.created_at).desc(), col(Report.id).desc())
                                    .limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor({"t": rows[-1].created_at.isoformat(), "id": str(rows[-1].id)})
    return rows, next_cursor


async def get_or_404(session: AsyncSession, report_id: str) -> Report:
    try:
        rid = uuid.UUID(report_id)
    except ValueError:
        raise Problem(404, "No such report.") from None
    report = await session.get(Report, rid)
    if report is None:
        raise Problem(404, "No such report.")
    return report


async def set_status(session: AsyncSession, chat: ChatService, caller_id: str, report_id: str,
                     status: str) -> Report:
    report = await get_or_404(session, report_id)
    await require_moderator(chat, report.channel_id, caller_id)
    report.status = status
    if status == ReportStatus.OPEN.value:
        report.resolved_at, report.resolved_by = None, None
    else:
        report.resolved_at, report.resolved_by = datetime.now(UTC), caller_id
    session.add(report)
    return report
