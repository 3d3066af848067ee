from fastapi import APIRouter, Response

from servicekit.problems import problem_responses

from channels_service.channels import service as channels
from channels_service.deps import CallerId, SessionDep
from channels_service.follows import service

router = APIRouter(prefix="/api/channels", tags=["follows"])


@router.post("/{channel_id}/follow", status_code=204, response_class=Response,
             responses=problem_responses(401, 404, 422), summary="Follow a channel (idempotent)")
async def follow(channel_id: str, caller: CallerId, session: SessionDep) -> Response:
    channel = await channels.get_or_raise(session, channel_id)
    await service.follow(session, channel, caller)
    await session.commit()
    return Response(status_code=204)


@router.delete("/{channel_id}/follow", status_code=204, response_class=Response,
               responses=problem_responses(401, 404), summary="Unfollow a channel (idempotent)")
async def unfollow(channel_id: str, caller: CallerId, session: SessionDep) -> Response:
    channel = await channels.get_or_raise(session, channel_id)
    await service.unfollow(session, channel, caller)
    await session.commit()
    return Response(status_code=204)
