from urllib.parse import quote

from fastapi import APIRouter, Response

from servicekit.problems import problem_responses

from channels_service.channels import service as channels
from channels_service.deps import CallerId, SessionDep, SettingsDep
from channels_service.providers import service as providers
from channels_service.providers.models import ProviderStream
from channels_service.streamkeys import service
from channels_service.streamkeys.models import StreamKeyOut

router = APIRouter(prefix="/api/channels", tags=["stream keys"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def srt_url(base: str, key: str) -> str:
    """The SRT ingest URL with the key as its streamid (kept after any options the base carries)."""
    return f"{base}{'&' if '?' in base else '?'}streamid={quote(key, safe='')}"


def key_out(key: str, settings) -> StreamKeyOut:
    return StreamKeyOut(stream_key=key, rtmp_url=settings.rtmp_url, srt_url=srt_url(settings.srt_url, key))
def _provider_key(row: ProviderStream) -> StreamKeyOut:
    return StreamKeyOut(stream_key=row.stream_key, rtmp_url=row.rtmp_url, srt_url=row.srt_url,
                        provider=row.provider, playback_url=row.playback_url)


@router.get("/{channel_id}/stream-key", response_model=StreamKeyOut,
            responses=problem_responses(401, 403, 404),
            summary="The channel's stream key, RTMP URL and SRT URL (owner only)")
async def get_stream_key(channel_id: str, caller: CallerId, session: SessionDep, settings: SettingsDep,
                         response: Response) -> StreamKeyOut:
    channel = await channels.get_or_raise(session, channel_id)
    channels.require_owner(channel, caller, "see the stream key")
    response.headers.update(NO_STORE)
    row = await providers.current(session, channel)
    if row is not None:
        return _provider_key(row)
    key = await service.current(session, channel.id)
    await session.commit()
    response.headers.update(NO_STORE)
    return key_out(key, settings)


@router.post("/{channel_id}/stream-key/rotate", response_model=StreamKeyOut,
             responses=problem_responses(401, 403, 404, 502, 503),
             summary="Replace the stream key; a live publish with the old key is dropped")
async def rotate_stream_key(channel_id: str, caller: CallerId, session: SessionDep, settings: SettingsDep,
                            response: Response) -> StreamKeyOut:
    channel = await channels.get_or_raise(session, channel_id, lock=True)
    channels.require_owner(channel, caller, "rotate the stream key")
    response.headers.update(NO_STORE)
    row = await providers.current(session, channel, lock=True)
    if row is not None:  # the provider's reset (Mux) or a new input (Cloudflare)
        change = await providers.rotate(session, settings, channel, row)
        answer = _provider_key(row)
        await providers.commit(session, settings, change)
        return answer
    key = await service.rotate(session, channel.id)
    await session.commit()
    response.headers.update(NO_STORE)
    return key_out(key, settings)
