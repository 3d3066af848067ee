from fastapi import APIRouter, Query
from servicekit.pagination import Limit, clamp_limit
from servicekit.problems import problem_responses

from chat_service.deps import ChatDep, CurrentUser, SessionDep
from chat_service.reports import service
from chat_service.reports.models import ReportCreate, ReportPage, ReportPublic, ReportStatus, ReportUpdate

router = APIRouter(tags=["reports"])


async def _with_messages(chat, reports) -> list[ReportPublic]:
    messages = await chat.messages(r.message_id for r in reports if r.message_id)
    return [ReportPublic.of(r, messages.get(r.message_id) if r.message_id else None) for r in reports]


@router.post("/api/reports", status_code=201, response_model=ReportPublic,
             responses=problem_responses(401, 404, 422))
async def file_report(body: ReportCreate, caller: CurrentUser, session: SessionDep, chat: ChatDep) -> ReportPublic:
    """Report a message and/or a user of a channel's chat to its owner and moderators. With a
    `messageId`, the message must belong to the channel and `userId` defaults to its author.
    The answer's `message` is null unless the caller is the channel's owner or a moderator: the
    stored message may have been deleted, and a report must not be a way to read it back."""
    report = await service.create(session, chat, caller.id, body)
    await session.commit()
    if not await service.is_moderator(chat, report.channel_id, caller.id):
        return ReportPublic.of(report)
    return (await _with_messages(chat, [report]))[0]


@router.get("/api/channels/{channel_id}/reports", response_model=ReportPage,
            responses=problem_responses(400, 401, 403, 404, 422))
async def list_reports(channel_id: str, caller: CurrentUser, session: SessionDep, chat: ChatDep,
                       status: ReportStatus | None = None, limit: Limit = 50,
                       cursor: str | None = Query(None, max_length=500)) -> ReportPage:
    """The channel's reports, newest first (owner or moderator); `status` filters."""
    rows, next_cursor = await service.list_for_channel(session, chat, caller.id, channel_id, status=status,
                                                       limit=clamp_limit(limit), cursor=cursor)
    return ReportPage(items=await _with_messages(chat, rows), next_cursor=next_cursor)


@router.patch("/api/reports/{report_id}", response_model=ReportPublic,
              responses=problem_responses(401, 403, 404, 422))
async def update_report(report_id: str, body: ReportUpdate, caller: CurrentUser, session: SessionDep,
                        chat: ChatDep) -> ReportPublic:
    """Mark a report resolved or dismissed (or open again); owner or moderator of its channel."""
    report = await service.set_status(session, chat, caller.id, report_id, body.status)
    await session.commit()
    return (await _with_messages(chat, [report]))[0]
