from fastapi import APIRouter

from servicekit.pagination import Limit, Page, clamp_limit
from servicekit.problems import problem_responses

from channels_service.channels import service as channels
from channels_service.deps import SessionDep
from channels_service.vods import service
from channels_service.vods.models import Vod

router = APIRouter(prefix="/api/channels", tags=["vods"])


@router.get("/{channel_id}/vod", response_model=Page[Vod], responses=problem_responses(400, 404, 422),
            summary="The channel's archived broadcasts with their recordings, newest first")
async def list_vods(channel_id: str, session: SessionDep, limit: Limit = 50,
                    cursor: str | None = None) -> Page[Vod]:
    channel = await channels.get_or_raise(session, channel_id)
    items, next_cursor = await service.list_vods(session, channel, clamp_limit(limit), cursor)
    return Page[Vod](items=items, next_cursor=next_cursor)
