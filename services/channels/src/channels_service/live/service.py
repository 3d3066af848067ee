"""isLive / liveStreamId / viewer counts: a projection of the streams service's events.

- `stream.started`: the channel is live with that stream (unless a newer stream already is).
- `stream.ended` / `stream.archived`: the channel is offline again if that stream was the live one;
  its peak viewer count is added to the channel's `viewCount` once.
- `stream.archived` with a `vodUrl`: the recording is listed as a VOD.
- `stream.viewers` (not a domain event: read from VIEWERS by `live.viewers`, no inbox): the live
  viewer count (directory order), ignored for streams no longer live and for counts older than
  the one already stored.
"""

import logging
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, or_
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.events.streams import Stream, StreamViewers

from channels_service.channels.models import Channel
from channels_service.live.models import ObservedStream
from channels_service.schemas import parse_uuid
from channels_service.vods import service as vods

log = logging.getLogger("channels.live")

STREAM_EVENTS = ("stream.started", "stream.ended", "stream.archived")
RANK = {"stream.started": 1, "stream.ended": 2, "stream.archived": 3}


async def handle_stream_event(session: AsyncSession, event: Envelope) -> None:
    if event.type in RANK and isinstance(event.data, Stream):
        await _lifecycle(session, event.type, event.data, event.time)


async def _advance(session: AsyncSession, stream: Stream, channel_id, rank: int) -> int | None:
    """Record that `stream` reached `rank`; the rank it had before, or None when this event is
    not news (the stream already got that far)."""
    await session.exec(insert(ObservedStream)
                       .values(stream_id=stream.id, channel_id=channel_id, status_rank=0)
                       .on_conflict_do_nothing(index_elements=["stream_id"]))
    row = await session.get(ObservedStream, stream.id, with_for_update=True, populate_existing=True)
    if row.status_rank >= rank:
        return None
    previous = row.status_rank
    row.status_rank = rank
    session.add(row)
    await session.flush()
    return previous


async def _lifecycle(session: AsyncSession, event_type: str, stream: Stream, at: datetime) -> None:
    channel_id = parse_uuid(stream.channel_id)
    channel = await session.get(Channel, channel_id, with_for_update=True) if channel_id else None
    if channel is None:
        log.warning("stream event for an unknown channel ignored", extra={"streamId": stream.id})
        return
    previous = await _advance(session, stream, channel.id, RANK[event_type])
    if previous is None:
        return
    if event_type == "stream.started":
        started = stream.start_time or at
        newer_live = (channel.is_live and channel.live_stream_id != stream.id and channel.live_started_at
                      and channel.live_started_at > started)
        if not newer_live:
            channel.is_live, channel.live_stream_id, channel.live_started_at = True, stream.id, started
            channel.viewer_count, channel.viewer_count_at = stream.viewer_count, at
    else:
        if channel.live_stream_id == stream.id:
            channel.is_live, channel.live_stream_id, channel.live_started_at = False, None, None
            channel.viewer_count, channel.viewer_count_at = 0, at
        if previous < RANK["stream.ended"]:
            channel.view_count += stream.peak_viewers
        if event_type == "stream.archived":
            await vods.record(session, channel, stream, at)
    session.add(channel)
    await session.flush()


async def apply_viewers(session: AsyncSession, data: StreamViewers, at: datetime) -> None:
    channel_id = parse_uuid(data.channel_id)
    if channel_id is None:
        return
    await session.exec(
        update(Channel)
        .where(col(Channel.id) == channel_id, col(Channel.is_live).is_(True),
               Channel.live_stream_id == data.stream_id,
               or_(col(Channel.viewer_count_at).is_(None), col(Channel.viewer_count_at) <= at))
        .values(viewer_count=data.count, viewer_count_at=at)
    )
