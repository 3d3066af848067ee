from fastapi import APIRouter, Path, Query

from servicekit.pagination import Limit, Page, clamp_limit
from servicekit.problems import problem_responses

from channels_service.channels import service
from channels_service.channels.models import ChannelCreate, ChannelDetail, ChannelPublic, ChannelUpdate
from channels_service.deps import CallerId, CurrentUser, MaybeCallerId, Runtime, SessionDep, SettingsDep
from channels_service.follows import service as follows
from channels_service.moderation import service as moderation
from channels_service.providers import service as providers
from channels_service.schemas import CATEGORY_RE, NO_CONTROL_RE, OWNER_RE
from channels_service.streamkeys import service as stream_keys

router = APIRouter(prefix="/api/channels", tags=["channels"])


@router.post("", status_code=201, response_model=ChannelPublic,
             responses=problem_responses(401, 409, 422, 502, 503),
             summary="Create a channel for the caller (up to MAX_CHANNELS_PER_USER, then 409)")
async def create_channel(body: ChannelCreate, caller: CurrentUser, caller_id: CallerId,
                         session: SessionDep, settings: SettingsDep) -> ChannelPublic:
    providers.require_configured(settings, body.provider)
    channel = await service.create(session, caller_id, caller.username, body,
                                   max_per_owner=settings.max_channels_per_user)
    await stream_keys.issue(session, channel.id)
    await moderation.create_default_filters(session, channel.id)
    # last: the provider's live stream is created only once everything else is known to be fine
    change = await providers.attach(session, settings, channel, body.provider)
    await providers.commit(session, settings, change)
    return await service.to_public(session, channel)


@router.get("", response_model=Page[ChannelPublic], responses=problem_responses(400, 401, 422),
            summary="The directory: public channels, live first by viewer count, then newest")
async def list_channels(
    session: SessionDep, viewer: MaybeCallerId,
    live: bool | None = Query(None, description="true: only live channels; false: only offline ones"),
    category: str | None = Query(None, max_length=40, pattern=CATEGORY_RE, description="Exact category slug"),
    q: str | None = Query(None, max_length=100, pattern=NO_CONTROL_RE,
                          description="Case-insensitive search in name, slug and description"),
    owner: str | None = Query(None, pattern=OWNER_RE, description=(
        "Only this user's channels: a user id, or `me` for the caller's own (401 without a token); "
        "the caller's own include their unlisted ones")),
    limit: Limit = 50, cursor: str | None = None,
) -> Page[ChannelPublic]:
    items, next_cursor = await service.directory(session, viewer_id=viewer, live=live, category=category, q=q,
                                                 owner_id=service.owner_filter(owner, viewer),
                                                 limit=clamp_limit(limit), cursor=cursor)
    return Page[ChannelPublic](items=items, next_cursor=next_cursor)


@router.get("/{channel_id}", response_model=ChannelDetail, responses=problem_responses(401, 404),
            summary="A channel by slug (or id), with its creator")
async def get_channel(session: SessionDep, viewer: MaybeCallerId,
                      channel_id: str = Path(description="The channel's slug, or its id")) -> ChannelDetail:
    # one path template for GET (by slug) and PUT (by id) keeps the OpenAPI paths unambiguous
    channel = await service.get_by_slug_or_id(session, channel_id)
    public = await service.to_public(session, channel)
    return ChannelDetail(**public.model_dump(),
                         is_following=await follows.is_following(session, channel.id, viewer),
                         can_moderate=await moderation.can_moderate(session, channel, viewer))


@router.put("/{channel_id}", response_model=ChannelPublic,
            responses=problem_responses(401, 403, 404, 409, 422, 502, 503),
            summary="Edit the channel (owner only); fields left out keep their value")
async def update_channel(channel_id: str, body: ChannelUpdate, caller: CallerId, session: SessionDep,
                         settings: SettingsDep, runtime: Runtime) -> ChannelPublic:
    channel = await service.get_or_raise(session, channel_id, lock=True)
    service.require_owner(channel, caller, "edit it")
    providers.require_configured(settings, body.provider)
    channel = await service.update(session, settings, channel, body, runtime.store)
    change = await providers.switch(session, settings, channel, body.provider)
    await providers.commit(session, settings, change)
    return await service.to_public(session, channel)
