from fastapi import APIRouter, Response

from servicekit.problems import problem_responses

from channels_service.channels import service as channels
from channels_service.deps import CallerId, SessionDep, SettingsDep
from channels_service.simulcast import service
from channels_service.simulcast.models import Destination, DestinationCreate, DestinationList, DestinationUpdate

router = APIRouter(prefix="/api/channels", tags=["simulcast"])

NO_STORE = {"Cache-Control": "no-store"}


@router.get("/{channel_id}/destinations", response_model=DestinationList,
            responses=problem_responses(401, 403, 404),
            summary="The channel's simulcast destinations with their state (owner only)")
async def list_destinations(channel_id: str, caller: CallerId, session: SessionDep,
                            response: Response) -> DestinationList:
    channel = await channels.get_or_raise(session, channel_id)
    channels.require_owner(channel, caller, "see the simulcast destinations")
    rows = await service.list_for(session, channel.id)
    response.headers.update(NO_STORE)
    return DestinationList(items=[Destination.of(r, live=channel.is_live) for r in rows])


@router.post("/{channel_id}/destinations", status_code=201, response_model=Destination,
             responses=problem_responses(401, 403, 404, 409, 422, 503),
             summary="Add an RTMP(S) destination the live stream is copied to (owner only); the key is "
                     "stored encrypted and never answered again, only its last 4 characters")
async def create_destination(channel_id: str, body: DestinationCreate, caller: CallerId, session: SessionDep,
                             settings: SettingsDep) -> Destination:
    channel = await channels.get_or_raise(session, channel_id)
    channels.require_owner(channel, caller, "add simulcast destinations")
    row = await service.create(session, settings, channel, body)
    await session.commit()
    return Destination.of(row, live=channel.is_live)


@router.put("/{channel_id}/destinations/{destination_id}", response_model=Destination,
            responses=problem_responses(401, 403, 404, 422, 503),
            summary="Change a destination (owner only); fields left out keep their value")
async def update_destination(channel_id: str, destination_id: str, body: DestinationUpdate, caller: CallerId,
                             session: SessionDep, settings: SettingsDep) -> Destination:
    channel = await channels.get_or_raise(session, channel_id)
    channels.require_owner(channel, caller, "change simulcast destinations")
    row = await service.get_or_raise(session, channel, destination_id, lock=True)
    row = await service.update(session, settings, row, body)
    await session.commit()
    return Destination.of(row, live=channel.is_live)


@router.delete("/{channel_id}/destinations/{destination_id}", status_code=204, response_class=Response,
               responses=problem_responses(401, 403, 404), summary="Remove a destination (owner only)")
async def delete_destination(channel_id: str, destination_id: str, caller: CallerId,
                             session: SessionDep) -> Response:
    channel = await channels.get_or_raise(session, channel_id)
    channels.require_owner(channel, caller, "remove simulcast destinations")
    row = await service.get_or_raise(session, channel, destination_id, lock=True)
    await service.delete(session, row)
    await session.commit()
    return Response(status_code=204)
