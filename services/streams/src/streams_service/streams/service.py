"""Stream sessions: creation, the lifecycle moves and their events.

Every move goes through `lifecycle.check_transition` and stages its events in the caller's
transaction (outbox), so a status and its announcement commit together or not at all. Whatever
changes a channel's streams (API calls, media events, the sweeper) first takes that channel's
advisory lock, so two writers never decide on the same channel at once.
"""

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import or_, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events.media import MediaProvider
from contracts.events.streams import StreamEndRequested, StreamStatusChanged, StreamVodRequested
from contracts.subjects import (STREAM_ARCHIVED, STREAM_CREATED, STREAM_END_REQUESTED, STREAM_ENDED,
                                STREAM_STARTED, STREAM_STATUS_CHANGED, STREAM_VOD_REQUESTED)
from servicekit.outbox import stage_event
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem

from streams_service.channels import service as channels
from streams_service.channels.models import Channel
from streams_service.ingest.models import IngestSession
from streams_service.schemas import clean_id
from streams_service.streams import vod
from streams_service.streams.lifecycle import StreamStatus, check_transition, duration_seconds
from streams_service.streams.models import Stream, StreamCreate, StreamStart

SOURCE = "streams"
# set on a session in which a stream went LIVE: once it commits, the viewer counter compares that
# channel's viewers with the new stream's 0 (viewers/service.py)
WENT_LIVE = "streams.went_live"
log = logging.getLogger("streams.streams")

OFFLINE, LIVE, ENDING, ARCHIVED = (StreamStatus.OFFLINE, StreamStatus.LIVE, StreamStatus.ENDING,
                                   StreamStatus.ARCHIVED)


def now() -> datetime:
    return datetime.now(UTC)


async def lock_channel(session: AsyncSession, channel_id: str) -> None:
    """Serialise every lifecycle change of one channel until the transaction ends."""
    await session.exec(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
                          .bindparams(key=f"streams:{channel_id}"))


# ---- reads ------------------------------------------------------------------------------------

def parse_stream_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        return None


async def get(session: AsyncSession, stream_id: str | uuid.UUID, *,
              for_update: bool = False) -> Stream | None:
    sid = stream_id if isinstance(stream_id, uuid.UUID) else parse_stream_id(stream_id)
    if sid is None:
        return None
    if for_update:
        return await session.get(Stream, sid, with_for_update=True, populate_existing=True)
    return await session.get(Stream, sid)


async def get_or_raise(session: AsyncSession, stream_id: str) -> Stream:
    stream = await get(session, stream_id)
    if stream is None:
        raise Problem(404, "No such stream.")
    return stream


async def get_for_change(session: AsyncSession, stream_id: str, user_id: str) -> Stream:
    """The stream, locked for a change by its owner: 404 unknown, 403 not the owner."""
    stream = await get_or_raise(session, stream_id)
    await require_owner(session, stream, user_id)
    await lock_channel(session, stream.channel_id)
    return await get(session, stream.id, for_update=True)


async def require_owner(session: AsyncSession, stream: Stream, user_id: str) -> None:
    owner = stream.owner_id
    if owner is None:
        channel = await channels.get(session, stream.channel_id)
        owner = channel.owner_id if channel else None
    if owner != user_id:
        raise Problem(403, "Only the channel's owner can do this.")


async def _one_with_status(session: AsyncSession, channel_id: str, status: StreamStatus) -> Stream | None:
    return (await session.exec(
        select(Stream).where(Stream.channel_id == channel_id, Stream.status == status.value)
        .with_for_update().execution_options(populate_existing=True))).first()


async def live_of(session: AsyncSession, channel_id: str) -> Stream | None:
    return await _one_with_status(session, channel_id, LIVE)


async def prepared_of(session: AsyncSession, channel_id: str) -> Stream | None:
    return await _one_with_status(session, channel_id, OFFLINE)


async def current_ingest(session: AsyncSession, channel_id: str) -> IngestSession | None:
    """The channel's encoder connection if one is connected now (the newest connect wins)."""
    latest = (await session.exec(
        select(IngestSession).where(IngestSession.channel_id == channel_id,
                                    col(IngestSession.connected_at).is_not(None))
        .order_by(col(IngestSession.connected_at).desc()).limit(1))).first()
    return latest if latest is not None and latest.disconnected_at is None else None


async def list_for_channel(session: AsyncSession, channel_id: str, status: StreamStatus | None, limit: int,
                           cursor: str | None, lookup: channels.ChannelLookup | None = None
                           ) -> tuple[list[Stream], str | None]:
    """Newest first, keyset-paginated on (created_at, id); 404 for a channel nobody heard of."""
    cid = clean_id(channel_id)
    if cid is None:
        raise Problem(404, "No such channel.")
    if (await session.exec(select(Stream.id).where(Stream.channel_id == cid).limit(1))).first() is None \
            and await channels.get(session, cid, lookup) is None:
        raise Problem(404, "No such channel.")
    stmt = select(Stream).where(Stream.channel_id == cid)
    if status is not None:
        stmt = stmt.where(Stream.status == status.value)
    after = decode_cursor(cursor)
    if after:
        try:
            at, last = datetime.fromisoformat(after["at"]), uuid.UUID(after["id"])
        except (KeyError, ValueError, TypeError, AttributeError):
            raise Problem(400, "The cursor is not valid; start again without it.") from None
        stmt = stmt.where((col(Stream.created_at) < at)
                          | ((col(Stream.created_at) == at) & (col(Stream.id) < last)))
    rows = (await session.exec(stmt.order_by(col(Stream.created_at).desc(), col(Stream.id).desc())
                               .limit(limit + 1))).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor({"at": rows[-1].created_at.isoformat(), "id": str(rows[-1].id)})
    return list(rows), next_cursor


# ---- events -------------------------------------------------------------------------------------

async def _announce(session: AsyncSession, event_type: str, stream: Stream) -> None:
    await stage_event(session, event_type, stream.to_payload(), source=SOURCE, key=str(stream.id))


async def _status_changed(session: AsyncSession, stream: Stream, previous: StreamStatus) -> None:
    payload = StreamStatusChanged(**stream.to_payload().model_dump(), previous_status=previous)
    await stage_event(session, STREAM_STATUS_CHANGED, payload, source=SOURCE, key=str(stream.id))


# ---- the lifecycle moves ------------------------------------------------------------------------

async def create(session: AsyncSession, *, channel_id: str, owner_id: str | None, title: str,
                 description: str | None = None) -> Stream:
    """A new prepared (OFFLINE) session; `stream.created`. The caller holds the channel lock."""
    stream = Stream(channel_id=channel_id, owner_id=owner_id, title=title, description=description)
    session.add(stream)
    await session.flush()
    await session.refresh(stream)
    await _announce(session, STREAM_CREATED, stream)
    return stream


def attach_ingest(stream: Stream, ingest: IngestSession) -> bool:
    """Make `ingest` the stream's current encoder connection; True when the playback URL changed."""
    previous_url = stream.hls_url
    stream.ingest_session_id = ingest.id
    stream.provider = ingest.provider
    stream.hls_url = ingest.hls_url or stream.hls_url
    stream.disconnected_at = ingest.disconnected_at
    if ingest.stream_id is None:
        ingest.stream_id = stream.id
    return stream.hls_url != previous_url


async def go_live(session: AsyncSession, stream: Stream, *, at: datetime, ingest: IngestSession) -> Stream:
    previous = StreamStatus(stream.status)
    stream.status = check_transition(previous, LIVE).value
    stream.start_time = at
    attach_ingest(stream, ingest)
    session.info[WENT_LIVE] = True
    session.add_all([stream, ingest])
    await session.flush()
    await _status_changed(session, stream, previous)
    await _announce(session, STREAM_STARTED, stream)
    return stream


async def continue_with(session: AsyncSession, stream: Stream, ingest: IngestSession) -> Stream:
    """A LIVE stream carries on with a new encoder connection (reconnect inside the window).

    The playback URL usually changes with the connection: `stream.started` is sent again with
    the new `hlsUrl` so pages reload their player (consumers key it on the stream id)."""
    url_changed = attach_ingest(stream, ingest)
    session.add_all([stream, ingest])
    await session.flush()
    if url_changed:
        await _announce(session, STREAM_STARTED, stream)
    return stream


async def end(session: AsyncSession, stream: Stream, *, end_time: datetime | None = None,
              requested: bool) -> Stream:
    """-> ENDING. `requested`: the creator ended it, so the media gateway must drop the ingest.

    A session that never went live has no recording to wait for and is archived at once; one
    whose recordings are already in goes on as `settle` decides."""
    previous = StreamStatus(stream.status)
    stream.status = check_transition(previous, ENDING).value
    stream.end_time = max(end_time or now(), stream.start_time) if stream.start_time else (end_time or now())
    stream.duration = duration_seconds(stream.start_time, stream.end_time)
    stream.viewer_count = 0
    stream.hls_url = None
    session.add(stream)
    await session.flush()
    await _status_changed(session, stream, previous)
    if previous == LIVE:
        await _announce(session, STREAM_ENDED, stream)
        if requested:
            await stage_event(session, STREAM_END_REQUESTED,
                              StreamEndRequested(stream_id=str(stream.id), channel_id=stream.channel_id),
                              source=SOURCE, key=str(stream.id))
    if stream.start_time is None:
        return await archive(session, stream, None)
    return await settle(session, stream)


# ---- the VOD: every part of the broadcast, in order (streams/vod.py) ---------------------------

async def parts_of(session: AsyncSession, stream: Stream) -> list[vod.Part]:
    """The encoder connections that fed the stream (a reconnect adds one), with their recordings."""
    fed = [col(IngestSession.stream_id) == stream.id]
    if stream.ingest_session_id is not None:
        fed.append(col(IngestSession.id) == stream.ingest_session_id)
    rows = (await session.exec(select(IngestSession).where(or_(*fed)))).all()
    return [vod.Part(session_id=row.id, connected_at=row.connected_at, arrived=row.recording_ready_at is not None,
                     vod_url=row.vod_url, duration_seconds=row.vod_duration_seconds,
                     joinable=row.provider in (None, MediaProvider.LOCAL.value)) for row in rows]


async def settle(session: AsyncSession, stream: Stream, *, waited_out: bool = False,
                 force: bool = False) -> Stream:
    """Archive an ENDING stream once its VOD is decided (vod.plan_vod); leave it ENDING while a
    part's recording is due or its parts are being joined.

    `waited_out`: recording_wait_seconds have passed, so the parts that came are all there is.
    `force`: ARCHIVED now whatever comes (the creator archives, or the join never came back):
    the longest part is the VOD meanwhile, and a joined VOD that arrives later replaces it."""
    parts = await parts_of(session, stream)
    plan = vod.plan_vod(parts, waited_out=waited_out or force)
    if plan.action == vod.VodAction.WAIT:
        return stream
    if plan.missing:
        log.warning("archiving without the parts whose recording never came",
                    extra={"streamId": str(stream.id), "missingParts": list(plan.missing)})
    if plan.action == vod.VodAction.JOIN:
        await request_join(session, stream, plan.parts)
        if not force:
            return stream
        plan = vod.longest([p for p in parts if p.session_id in plan.parts])
        log.warning("archived with its longest part until the joined VOD comes", extra={"streamId": str(stream.id)})
    elif plan.fallback:
        log.warning("parts recorded by a provider cannot be joined; the longest is the VOD",
                    extra={"streamId": str(stream.id)})
    return await archive(session, stream, plan.vod_url)


async def request_join(session: AsyncSession, stream: Stream, parts: tuple[str, ...]) -> None:
    """`stream.vod_requested`, once per stream: the media gateway answers with `media.vod.joined`."""
    if stream.vod_requested_at is not None:
        return
    stream.vod_requested_at = now()
    session.add(stream)
    await session.flush()
    await stage_event(session, STREAM_VOD_REQUESTED, StreamVodRequested(
        stream_id=str(stream.id), channel_id=stream.channel_id, ingest_session_ids=list(parts)),
        source=SOURCE, key=str(stream.id))
    log.info("joining the stream's parts into one VOD", extra={"streamId": str(stream.id), "parts": len(parts)})


async def joined(session: AsyncSession, stream: Stream, vod_url: str) -> Stream:
    """The media gateway joined the parts: an ENDING stream is ARCHIVED with that VOD; one archived
    meanwhile with its longest part (`settle(force=True)`) gets the whole VOD instead, announced
    again (stream.archived consumers upsert by stream id)."""
    if stream.status == ENDING.value:
        return await archive(session, stream, vod_url)
    if stream.status == ARCHIVED.value and stream.vod_url != vod_url:
        stream.vod_url, stream.is_archived = vod_url, True
        session.add(stream)
        await session.flush()
        await _announce(session, STREAM_ARCHIVED, stream)
        log.info("the joined VOD replaces the longest part", extra={"streamId": str(stream.id)})
    return stream


async def archive(session: AsyncSession, stream: Stream, vod_url: str | None) -> Stream:
    """-> ARCHIVED with `vod_url` as the VOD (None: there is no recording)."""
    previous = StreamStatus(stream.status)
    stream.status = check_transition(previous, ARCHIVED).value
    if vod_url:
        stream.vod_url = vod_url
        stream.is_archived = True
    session.add(stream)
    await session.flush()
    await _status_changed(session, stream, previous)
    await _announce(session, STREAM_ARCHIVED, stream)
    return stream


# ---- what the API asks for ---------------------------------------------------------------------

async def prepare(session: AsyncSession, caller_id: str, data: StreamCreate,
                  lookup: channels.ChannelLookup | None = None) -> tuple[Stream, bool]:
    """POST /api/streams: (stream, created). The channel's prepared session is reused (its title
    and description replaced) rather than piling up; 409 while the channel is LIVE."""
    channel = await channels.get_or_raise(session, data.channel_id, lookup)
    channels.require_owner(channel, caller_id)
    await lock_channel(session, channel.id)
    if await live_of(session, channel.id) is not None:
        raise Problem(409, "This channel is already live; end that stream first.")
    prepared = await prepared_of(session, channel.id)
    if prepared is not None:
        prepared.title, prepared.description = data.title, data.description
        session.add(prepared)
        await session.flush()
        return prepared, False
    return await create(session, channel_id=channel.id, owner_id=channel.owner_id, title=data.title,
                        description=data.description), True


async def start(session: AsyncSession, caller_id: str, channel_id: str, data: StreamStart,
                lookup: channels.ChannelLookup | None = None) -> Stream:
    """POST /api/streams/{channelId}/start (Go live): the channel's current session (LIVE, else
    the prepared one, else a new one); LIVE at once when an encoder is already connected."""
    channel = await channels.get_or_raise(session, channel_id, lookup)
    channels.require_owner(channel, caller_id)
    await lock_channel(session, channel.id)
    stream = await live_of(session, channel.id) or await prepared_of(session, channel.id)
    if stream is None:
        stream = await create(session, channel_id=channel.id, owner_id=channel.owner_id,
                              title=data.title or channel.name, description=data.description)
    else:
        changes = data.model_dump(exclude_unset=True, exclude_none=True)
        for field, value in changes.items():
            setattr(stream, field, value)
        session.add(stream)
    if stream.status == OFFLINE.value:
        ingest = await current_ingest(session, channel.id)
        if ingest is not None:
            await go_live(session, stream, at=now(), ingest=ingest)
    await session.flush()
    return stream


async def request_end(session: AsyncSession, stream: Stream) -> Stream:
    """POST /api/streams/{id}/end: ENDING now (idempotent while ENDING); 409 once ARCHIVED."""
    if stream.status == ENDING.value:
        return stream
    return await end(session, stream, requested=True)


async def set_status(session: AsyncSession, stream: Stream, target: StreamStatus) -> Stream:
    """PUT /api/streams/{id}/status: only the table's moves (409 otherwise); asking for the status
    the stream already has changes nothing."""
    current = StreamStatus(stream.status)
    if target == current:
        return stream
    check_transition(current, target)
    if target == LIVE:
        other = await live_of(session, stream.channel_id)
        if other is not None and other.id != stream.id:
            raise Problem(409, "This channel already has a LIVE stream.")
        ingest = await current_ingest(session, stream.channel_id)
        if ingest is None:
            raise Problem(409, "No encoder is connected to this channel: start streaming to go LIVE.")
        return await go_live(session, stream, at=now(), ingest=ingest)
    if target == ENDING:
        return await end(session, stream, requested=True)
    return await settle(session, stream, force=True)


async def hls_url(session: AsyncSession, stream_id: str) -> str:
    stream = await get_or_raise(session, stream_id)
    if stream.status != LIVE.value:
        raise Problem(409, f"The stream is {stream.status}, not LIVE: there is nothing to play live.")
    if not stream.hls_url:
        raise Problem(409, "The stream is LIVE but its playback URL is not known yet; try again shortly.")
    return stream.hls_url


def channel_name(channel: Channel | None, fallback: str) -> str:
    return channel.name if channel is not None and channel.name else fallback
