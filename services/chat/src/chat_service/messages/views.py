"""REST chat: send, delete, history. The same pipeline as the WebSocket edges."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from servicekit.pagination import Limit, clamp_limit
from servicekit.problems import Problem, problem_responses

from chat_service.deps import ChatDep, CurrentUser
from chat_service.messages.models import MessageCreate, MessagePage, MessagePublic, StreamMessageCreate
from chat_service.messages.service import ChatRejected, ChatService, ChatUnavailable, with_offset

router = APIRouter(tags=["messages"])

_STATUS = {"unauthorized": 403, "banned": 403, "timed_out": 403, "followers_only": 403, "subscribers_only": 403,
           "rate_limited": 429, "slow_mode": 429, "filtered": 422, "too_long": 422, "invalid": 422,
           # maybe stored: not a failure to claim, a retry (same nonce / Idempotency-Key) to ask for
           "unknown": 503}
SEND_ERRORS = problem_responses(401, 403, 404, 422, 429, 503)
Before = Annotated[int | None, Query(ge=1, le=2**62, description="Only messages with a smaller `seq` "
                                                                   "(pass the previous page's nextCursor)")]


def _problem(exc: ChatRejected) -> Problem:
    status = _STATUS.get(exc.code, 422)
    headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
    errors = [{"field": "content", "message": exc.message, "type": exc.code}] if status == 422 else None
    return Problem(status, exc.message, type_=f"urn:streamplatform:chat:{exc.code}", errors=errors,
                   headers=headers)


IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=100,
    description="Makes a send without a body `nonce` idempotent: retries with the same key within 5 minutes "
                "answer the same message (the key is used as the nonce)")]


def _nonce(nonce: str | None, idempotency_key: str | None) -> str | None:
    if idempotency_key is None or nonce == idempotency_key:
        return nonce
    if nonce is not None:
        raise Problem(422, "Give a nonce or an Idempotency-Key header, not two different ones.",
                      errors=[{"field": "nonce", "message": "differs from the Idempotency-Key header",
                               "type": "conflict"}])
    if not idempotency_key:
        raise Problem(422, "The Idempotency-Key header is empty.",
                      errors=[{"field": "Idempotency-Key", "message": "empty", "type": "string_too_short"}])
    return idempotency_key


async def _send(chat: ChatService, caller, channel_id: str, content: str, nonce: str | None) -> dict:
    try:
        message = await chat.send(user_id=caller.id, username=caller.username, channel_id=channel_id,
                                  content=content, nonce=nonce, via="rest")
    except ChatRejected as exc:
        raise _problem(exc) from None
    except ChatUnavailable as exc:
        raise Problem(503, str(exc), type_="urn:streamplatform:chat:unavailable",
                      headers={"Retry-After": "1"}) from None
    return message.model_dump(mode="json", by_alias=True)


async def _room(chat: ChatService, *, channel_id: str | None = None, stream_id: str | None = None):
    try:
        return await chat.resolve_room(channel_id=channel_id, stream_id=stream_id)
    except LookupError:
        raise Problem(404, "No such stream." if stream_id is not None else "No such channel.") from None


Cursor = Annotated[str | None, Query(max_length=30, description="The same as `before` (API.md's list "
                                                                  "convention): the previous page's nextCursor")]


def _before(before: int | None, cursor: str | None) -> int | None:
    if before is not None or not cursor:
        return before
    if not cursor.isdigit() or not 0 < int(cursor) <= 2**62:
        raise Problem(400, "The cursor is not valid; start again without it.")
    return int(cursor)


def _page(items: list[dict], limit: int) -> MessagePage:
    # a full page may have older messages behind it
    next_cursor = str(items[0]["seq"]) if items and len(items) >= limit else None
    return MessagePage(items=[MessagePublic.model_validate(m) for m in items], next_cursor=next_cursor)


@router.post("/api/messages", status_code=201, response_model=MessagePublic, responses=SEND_ERRORS)
async def send_message(body: MessageCreate, caller: CurrentUser, chat: ChatDep,
                       idempotency_key: IdempotencyKey = None) -> dict:
    """Send a message to a channel's room (`channelId`, or `streamId` for its channel). The answer
    comes once JetStream stored it; a resent `nonce` (or `Idempotency-Key` header) answers the same
    message (same id and seq). 403 banned/timed out/followers-only/subscribers-only, 422 filtered/too
    long/empty, 429 rate limit or slow mode (with Retry-After); 503 `urn:streamplatform:chat:unavailable` not
    stored, 503 `urn:streamplatform:chat:unknown` maybe stored: resend with the same nonce/key."""
    nonce = _nonce(body.nonce, idempotency_key)
    if (body.channel_id is None) == (body.stream_id is None):
        raise Problem(422, "Give exactly one of channelId and streamId.",
                      errors=[{"field": "channelId", "message": "give channelId or streamId", "type": "missing"}])
    room = await _room(chat, channel_id=body.channel_id, stream_id=body.stream_id)
    return await _send(chat, caller, room.channel_id, body.content, nonce)


@router.delete("/api/messages/{message_id}", status_code=204, responses=problem_responses(401, 403, 404, 503))
async def delete_message(message_id: str, caller: CurrentUser, chat: ChatDep) -> Response:
    """Soft-delete: the author, the channel owner or a moderator. Removed live from every viewer."""
    try:
        await chat.delete(actor_id=caller.id, message_id=message_id)
    except LookupError:
        raise Problem(404, "No such message.") from None
    except ChatRejected as exc:
        raise Problem(403, exc.message) from None
    except ChatUnavailable as exc:
        raise Problem(503, str(exc), headers={"Retry-After": "1"}) from None
    return Response(status_code=204)


def _offset(alias: str, meaning: str):
    # the bound is far beyond any stream (115 days) and keeps start + offset a valid datetime
    return Annotated[float | None, Query(alias=alias, ge=0, le=10_000_000, allow_inf_nan=False,
                                         description=f"Chat replay: {meaning}, in seconds from the stream's "
                                                     "start; give fromOffset and toOffset together")]


FromOffset = _offset("fromOffset", "the window's start (included)")
ToOffset = _offset("toOffset", "the window's end (excluded)")


def _window(from_offset: float | None, to_offset: float | None, before: int | None, max_seconds: float
            ) -> tuple[float, float]:
    """The replay window [from, to) asked for, or a 422 saying what is wrong with it."""
    def refuse(field: str, message: str, type_: str) -> Problem:
        return Problem(422, message, errors=[{"field": field, "message": message, "type": type_}])

    if from_offset is None or to_offset is None:
        missing = "fromOffset" if from_offset is None else "toOffset"
        raise refuse(missing, "A replay window needs both fromOffset and toOffset.", "missing")
    if to_offset <= from_offset:
        raise refuse("toOffset", "toOffset must be greater than fromOffset.", "greater_than")
    if to_offset - from_offset > max_seconds:
        raise refuse("toOffset", f"A replay window is at most {max_seconds:g} seconds; ask for the next "
                                 "window when the playhead gets there.", "window_too_large")
    if before is not None:
        raise refuse("before", "`before` pages back through history; a replay window pages forward "
                               "with cursor=<nextCursor>.", "conflict")
    return from_offset, to_offset


def _after(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not cursor.isdigit() or not 0 < int(cursor) <= 2**62:
        raise Problem(400, "The cursor is not valid; start the window again without it.")
    return int(cursor)


@router.get("/api/streams/{stream_id}/messages", response_model=MessagePage,
            responses=problem_responses(400, 404, 409, 422))
async def stream_history(stream_id: str, chat: ChatDep, limit: Limit = 50, before: Before = None,
                         cursor: Cursor = None, from_offset: FromOffset = None,
                         to_offset: ToOffset = None) -> MessagePage:
    """Chat history of one stream (messages sent while it was live), oldest first, each with
    `offsetSeconds` (seconds from the stream's start). Page back with `before=<nextCursor>` (or
    `cursor=`).

    Chat replay: with `fromOffset` and `toOffset` (seconds, `fromOffset <= offsetSeconds <
    toOffset`, at most REPLAY_MAX_WINDOW_SECONDS (600) apart: a longer window is 422, never cut
    short), the messages of that window, oldest first, deleted ones left out; a busy window comes
    in pages of `limit`, `nextCursor` (pass it as `cursor=`) continues it. 409 when the stream
    has not gone live (it has no start to count from)."""
    room = await _room(chat, stream_id=stream_id)
    n = clamp_limit(limit)
    window = None
    if from_offset is not None or to_offset is not None:
        window = _window(from_offset, to_offset, before, chat.settings.replay_max_window_seconds)
    started_at = await chat.stream_start(stream_id)
    if window is None:
        items = await chat.history(room.channel_id, limit=n, before_seq=_before(before, cursor), stream_id=stream_id)
        return _page([with_offset(m, started_at) for m in items] if started_at else items, n)
    if started_at is None:
        raise Problem(409, "This stream has not gone live, so it has no chat to replay.")
    items, more = await chat.replay(room.channel_id, stream_id, started_at, *window, limit=n, after_seq=_after(cursor))
    return MessagePage(items=[MessagePublic.model_validate(m) for m in items],
                       next_cursor=str(items[-1]["seq"]) if more and items else None)


@router.post("/api/streams/{stream_id}/messages", status_code=201, response_model=MessagePublic,
             responses=SEND_ERRORS)
async def send_stream_message(stream_id: str, body: StreamMessageCreate, caller: CurrentUser,
                              chat: ChatDep, idempotency_key: IdempotencyKey = None) -> dict:
    """Send to the room of the stream's channel (as POST /api/messages with `streamId`)."""
    nonce = _nonce(body.nonce, idempotency_key)
    room = await _room(chat, stream_id=stream_id)
    return await _send(chat, caller, room.channel_id, body.content, nonce)


@router.get("/api/channels/{channel_id}/messages", response_model=MessagePage,
            responses=problem_responses(400, 404, 422))
async def channel_history(channel_id: str, chat: ChatDep, limit: Limit = 50, before: Before = None,
                          cursor: Cursor = None) -> MessagePage:
    """Chat history of a channel's room across streams (and offline chat), oldest first."""
    room = await _room(chat, channel_id=channel_id)
    n = clamp_limit(limit)
    return _page(await chat.history(room.channel_id, limit=n, before_seq=_before(before, cursor)), n)
