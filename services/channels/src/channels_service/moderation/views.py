from fastapi import APIRouter, Response

from servicekit.pagination import Limit, Page, clamp_limit
from servicekit.problems import Problem, problem_responses

from channels_service.channels import service as channels
from channels_service.deps import CallerId, SessionDep, SettingsDep
from channels_service.moderation import service
from channels_service.moderation.models import Ban, BanCreate, Filters, FiltersUpdate, Moderator
from channels_service.schemas import parse_uuid

router = APIRouter(prefix="/api/channels", tags=["moderation"])


def _user_id(raw: str):
    user_id = parse_uuid(raw)
    if user_id is None:
        raise Problem(404, "No such user.")
    return user_id


# ---- filters ---------------------------------------------------------------------------------

@router.get("/{channel_id}/filters", response_model=Filters, responses=problem_responses(401, 403, 404),
            summary="Chat filters (owner or moderator)")
async def get_filters(channel_id: str, caller: CallerId, session: SessionDep) -> Filters:
    channel = await channels.get_or_raise(session, channel_id)
    await service.require_moderator(session, channel, caller, "see the chat filters")
    filters = Filters.of(await service.get_filters(session, channel.id))
    await session.commit()
    return filters


@router.put("/{channel_id}/filters", response_model=Filters, responses=problem_responses(401, 403, 404, 422),
            summary="Change chat filters (owner or moderator); fields left out keep their value")
async def update_filters(channel_id: str, body: FiltersUpdate, caller: CallerId,
                         session: SessionDep) -> Filters:
    channel = await channels.get_or_raise(session, channel_id)
    await service.require_moderator(session, channel, caller, "change the chat filters")
    row = await service.update_filters(session, channel, body)
    await session.commit()
    return Filters.of(row)


# ---- moderators ------------------------------------------------------------------------------

@router.get("/{channel_id}/moderators", response_model=list[Moderator],
            responses=problem_responses(401, 403, 404),
            summary="The channel's moderators (owner or moderator)")
async def list_moderators(channel_id: str, caller: CallerId, session: SessionDep) -> list[Moderator]:
    channel = await channels.get_or_raise(session, channel_id)
    await service.require_moderator(session, channel, caller, "see the moderators")
    return await service.list_moderators(session, channel)


@router.put("/{channel_id}/moderators/{user_id}", status_code=204, response_class=Response,
            responses=problem_responses(401, 403, 404, 422), summary="Make a user a moderator (owner only)")
async def add_moderator(channel_id: str, user_id: str, caller: CallerId, session: SessionDep) -> Response:
    channel = await channels.get_or_raise(session, channel_id)
    target = _user_id(user_id)
    channels.require_owner(channel, caller, "appoint moderators")
    await service.add_moderator(session, channel, target, caller)
    await session.commit()
    return Response(status_code=204)


@router.delete("/{channel_id}/moderators/{user_id}", status_code=204, response_class=Response,
               responses=problem_responses(401, 403, 404), summary="Remove a moderator (owner only)")
async def remove_moderator(channel_id: str, user_id: str, caller: CallerId, session: SessionDep) -> Response:
    channel = await channels.get_or_raise(session, channel_id)
    target = _user_id(user_id)
    channels.require_owner(channel, caller, "remove moderators")
    await service.remove_moderator(session, channel, target)
    await session.commit()
    return Response(status_code=204)


# ---- bans ------------------------------------------------------------------------------------

@router.post("/{channel_id}/bans", status_code=201, response_model=Ban,
             responses=problem_responses(401, 403, 404, 422),
             summary="Ban (no duration) or time out a user (owner or moderator)")
async def ban_user(channel_id: str, body: BanCreate, caller: CallerId, session: SessionDep,
                   settings: SettingsDep) -> Ban:
    channel = await channels.get_or_raise(session, channel_id)
    await service.require_moderator(session, channel, caller, "ban users")
    ban = await service.ban(session, channel, body, caller, settings.max_ban_seconds)
    await session.commit()
    return ban


@router.delete("/{channel_id}/bans/{user_id}", status_code=204, response_class=Response,
               responses=problem_responses(401, 403, 404),
               summary="Lift a ban or timeout (owner or moderator)")
async def unban_user(channel_id: str, user_id: str, caller: CallerId, session: SessionDep) -> Response:
    channel = await channels.get_or_raise(session, channel_id)
    target = _user_id(user_id)
    await service.require_moderator(session, channel, caller, "lift bans")
    await service.unban(session, channel, target)
    await session.commit()
    return Response(status_code=204)


@router.get("/{channel_id}/bans", response_model=Page[Ban],
            responses=problem_responses(400, 401, 403, 404, 422),
            summary="Bans and running timeouts, newest first (owner or moderator)")
async def list_bans(channel_id: str, caller: CallerId, session: SessionDep, limit: Limit = 50,
                    cursor: str | None = None) -> Page[Ban]:
    channel = await channels.get_or_raise(session, channel_id)
    await service.require_moderator(session, channel, caller, "see the bans")
    items, next_cursor = await service.list_bans(session, channel, clamp_limit(limit), cursor)
    return Page[Ban](items=items, next_cursor=next_cursor)
