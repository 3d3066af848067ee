from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from servicekit.pagination import Limit, Page, clamp_limit
from servicekit.problems import problem_responses

from streams_service.deps import ChannelLookupDep, CurrentUser, SessionDep
from streams_service.streams import service
from streams_service.streams.lifecycle import StreamStatus
from streams_service.streams.models import HlsUrl, StatusUpdate, StreamCreate, StreamPublic, StreamStart

router = APIRouter(prefix="/api/streams", tags=["streams"])
channel_router = APIRouter(prefix="/api/channels", tags=["streams"])


@router.post("", status_code=201, response_model=StreamPublic,
             responses={200: {"description": "The channel's prepared session, with the new title and "
                                             "description", "model": StreamPublic},
                        **problem_responses(401, 403, 404, 409, 422)})
async def prepare_stream(body: StreamCreate, caller: CurrentUser, session: SessionDep,
                         lookup: ChannelLookupDep, response: Response) -> StreamPublic:
    """Prepare a session (OFFLINE) for a channel the caller owns. A channel has at most one
    prepared session: asking again updates it (200). 409 while the channel is LIVE."""
    stream, created = await service.prepare(session, caller.id, body, lookup)
    await session.commit()
    response.status_code = 201 if created else 200
    return StreamPublic.of(stream)


@router.post("/{channel_id}/start", response_model=StreamPublic,
             responses=problem_responses(401, 403, 404, 422))
async def go_live(channel_id: str, caller: CurrentUser, session: SessionDep, lookup: ChannelLookupDep,
                  body: Annotated[StreamStart | None, Body()] = None) -> StreamPublic:
    """Go live: the channel's current session (LIVE, else the prepared one, else a new one titled
    from the body or the channel name). It is LIVE at once when an encoder is already connected,
    else OFFLINE until one connects. `title`/`description`, when given, update it."""
    stream = await service.start(session, caller.id, channel_id, body or StreamStart(), lookup)
    await session.commit()
    return StreamPublic.of(stream)


@router.get("/{stream_id}", response_model=StreamPublic, responses=problem_responses(404, 422))
async def get_stream(stream_id: str, session: SessionDep) -> StreamPublic:
    return StreamPublic.of(await service.get_or_raise(session, stream_id))


@router.put("/{stream_id}/status", response_model=StreamPublic,
            responses=problem_responses(401, 403, 404, 409, 422))
async def set_status(stream_id: str, body: StatusUpdate, caller: CurrentUser,
                     session: SessionDep) -> StreamPublic:
    """Move the stream along its lifecycle: OFFLINE -> LIVE (needs a connected encoder),
    OFFLINE/LIVE -> ENDING (as POST .../end), ENDING -> ARCHIVED (give up waiting for the
    recording). Anything else is 409; the status it already has changes nothing."""
    stream = await service.get_for_change(session, stream_id, caller.id)
    stream = await service.set_status(session, stream, body.status)
    await session.commit()
    return StreamPublic.of(stream)


@router.post("/{stream_id}/end", status_code=202, response_model=StreamPublic,
             responses=problem_responses(401, 403, 404, 409))
async def end_stream(stream_id: str, caller: CurrentUser, session: SessionDep) -> StreamPublic:
    """End the stream: ENDING now (the media gateway drops the ingest), ARCHIVED when its
    recording is ready. A session that never went live is archived at once (no recording).
    Repeating it while ENDING is harmless; 409 once ARCHIVED."""
    stream = await service.get_for_change(session, stream_id, caller.id)
    stream = await service.request_end(session, stream)
    await session.commit()
    return StreamPublic.of(stream)


@router.get("/{stream_id}/hls", response_model=HlsUrl, responses=problem_responses(404, 409))
async def hls(stream_id: str, session: SessionDep) -> HlsUrl:
    """The master playlist of a LIVE stream; 409 when it is not LIVE."""
    return HlsUrl(url=await service.hls_url(session, stream_id))


@channel_router.get("/{channel_id}/streams", response_model=Page[StreamPublic],
                    responses=problem_responses(400, 404, 422))
async def channel_streams(channel_id: str, session: SessionDep, lookup: ChannelLookupDep, limit: Limit = 50,
                          cursor: str | None = None,
                          status: Annotated[StreamStatus | None, Query()] = None) -> Page[StreamPublic]:
    """A channel's streams, newest first, optionally only those with one status."""
    streams, next_cursor = await service.list_for_channel(session, channel_id, status, clamp_limit(limit),
                                                          cursor, lookup)
    return Page[StreamPublic](items=[StreamPublic.of(s) for s in streams], next_cursor=next_cursor)
