import logging

from fastapi import APIRouter, Response

from servicekit.pagination import Limit, Page, clamp_limit
from servicekit.problems import problem_responses

from streams_service.clips import service
from streams_service.clips.models import ClipAccepted, ClipCreate, ClipPublic, ClipStatus
from streams_service.deps import ChannelLookupDep, CurrentUser, LimiterDep, Runtime, SessionDep, SettingsDep

router = APIRouter(prefix="/api/clips", tags=["clips"])
channel_router = APIRouter(prefix="/api/channels", tags=["clips"])
log = logging.getLogger("streams.clips")


@router.post("", status_code=202, response_model=ClipAccepted,
             responses=problem_responses(401, 404, 409, 422, 429))
async def create_clip(body: ClipCreate, caller: CurrentUser, session: SessionDep, settings: SettingsDep,
                      limiter: LimiterDep) -> ClipAccepted:
    """Clip a stream: a LIVE one's last `durationSeconds`, or an ARCHIVED one's recording from
    `startSeconds` (default 0). Any signed-in viewer; rate-limited per user (429 with Retry-After).
    The clip is cut in the background: poll `GET /api/clips/{id}` until `ready` (or `failed`)."""
    clip = await service.create(session, settings, limiter, caller.id, body)
    await session.commit()
    return ClipAccepted(id=str(clip.id), status=ClipStatus.PROCESSING)


@router.get("/{clip_id}", response_model=ClipPublic, responses=problem_responses(404))
async def get_clip(clip_id: str, session: SessionDep) -> ClipPublic:
    return ClipPublic.of(await service.get_or_raise(session, clip_id))


@router.delete("/{clip_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_clip(clip_id: str, caller: CurrentUser, session: SessionDep, runtime: Runtime) -> Response:
    """Its creator, the channel's owner or a channel moderator."""
    clip = await service.delete(session, clip_id, caller.id)
    await session.commit()
    for key in service.object_keys(clip.id):
        try:
            await runtime.store.delete(key)
        except Exception as exc:  # noqa: BLE001  the row is gone; an orphan file is only storage
            log.warning("clip file not deleted", extra={"clipId": str(clip.id), "error": type(exc).__name__})
    return Response(status_code=204)


@channel_router.get("/{channel_id}/clips", response_model=Page[ClipPublic], responses=problem_responses(400, 404, 422))
async def channel_clips(channel_id: str, session: SessionDep, lookup: ChannelLookupDep, limit: Limit = 50,
                        cursor: str | None = None) -> Page[ClipPublic]:
    """A channel's ready clips, newest first."""
    clips, next_cursor = await service.list_for_channel(session, channel_id, clamp_limit(limit), cursor, lookup)
    return Page[ClipPublic](items=[ClipPublic.of(c) for c in clips], next_cursor=next_cursor)
