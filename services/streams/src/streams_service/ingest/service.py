"""What the media gateway's events do to streams, and the sweeper that closes the reconnect window.

- `media.ingest.connected`: the channel's LIVE stream carries on (reconnect inside the window, or
  a connection that replaced the encoder's current one); otherwise the prepared session, or a new
  one titled from the channel name, goes LIVE.
- `media.ingest.disconnected` / `media.ingest.errored`: the stream stays LIVE and remembers when
  its encoder left; the sweeper ends it (ENDING) once that is older than the window.
- `media.recording.ready`: the recording waits on its ingest session row; an ENDING stream that
  connection fed is settled (streams/vod.py): ARCHIVED with it when it is the one part, a join of
  every part asked of the media gateway once they are all in (`stream.vod_requested`).
- `media.vod.joined`: the stream is ARCHIVED with the joined VOD.
- `media.thumbnail.updated`: the LIVE (else the ENDING) stream's thumbnail, newest wins.

Events can come twice (the inbox drops a repeated id; a repeated fact under a new id finds its
session row already updated) and out of order (the provider's `at` is compared, and a status
never moves backwards).
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Gauge
from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.events.media import (IngestConnected, IngestDisconnected, IngestErrored, RecordingReady,
                                    ThumbnailUpdated, VodJoined)
from contracts.subjects import (MEDIA_INGEST_CONNECTED, MEDIA_INGEST_DISCONNECTED, MEDIA_INGEST_ERRORED,
                                MEDIA_RECORDING_READY, MEDIA_THUMBNAIL_UPDATED, MEDIA_VOD_JOINED)
from servicekit.db import Database
from servicekit.periodic import every

from streams_service.channels import service as channels
from streams_service.config import Settings
from streams_service.ingest.models import IngestSession
from streams_service.schemas import clean_id
from streams_service.streams import service as streams
from streams_service.streams.lifecycle import (ConnectAction, LiveSession, StreamStatus, on_connect,
                                               window_expired)
from streams_service.streams.models import Stream

log = logging.getLogger("streams.ingest")

# the database's count, set by every replica's sweeper: replicas agree, so dashboards take max()
STREAMS_LIVE = Gauge("streams_live", "Streams LIVE now (reconnect window included)")

MEDIA_EVENTS = (MEDIA_INGEST_CONNECTED, MEDIA_INGEST_DISCONNECTED, MEDIA_INGEST_ERRORED,
                MEDIA_RECORDING_READY, MEDIA_THUMBNAIL_UPDATED, MEDIA_VOD_JOINED)


def make_media_handler(settings: Settings):
    """InboxConsumer handler for the `media.*` events (MEDIA_EVENTS)."""
    handlers = {
        MEDIA_INGEST_CONNECTED: lambda session, event: on_connected(session, settings, event.data),
        MEDIA_INGEST_DISCONNECTED: lambda session, event: on_disconnected(session, event.data),
        MEDIA_INGEST_ERRORED: lambda session, event: on_disconnected(session, event.data),
        MEDIA_RECORDING_READY: lambda session, event: on_recording_ready(session, event.data, event.time),
        MEDIA_THUMBNAIL_UPDATED: lambda session, event: on_thumbnail(session, event.data, event.time),
        MEDIA_VOD_JOINED: lambda session, event: on_vod_joined(session, event.data),
    }

    async def handle(session: AsyncSession, event: Envelope) -> None:
        handler = handlers.get(event.type)
        if handler is not None:
            await handler(session, event)

    return handle


def _ids(channel_id: str, session_id: str) -> tuple[str, str] | None:
    cid, sid = clean_id(channel_id), clean_id(session_id)
    if cid is None or sid is None:
        log.warning("media event with an unusable id ignored")
        return None
    return cid, sid


async def _session_row(session: AsyncSession, session_id: str, channel_id: str) -> IngestSession:
    """The ingest session's row, locked; created by whichever of its events comes first."""
    row = await session.get(IngestSession, session_id, with_for_update=True, populate_existing=True)
    if row is None:
        row = IngestSession(id=session_id, channel_id=channel_id)
        session.add(row)
        await session.flush()
    return row


async def on_connected(session: AsyncSession, settings: Settings, data: IngestConnected) -> None:
    ids = _ids(data.channel_id, data.ingest_session_id)
    if ids is None:
        return
    channel_id, session_id = ids
    await streams.lock_channel(session, channel_id)
    row = await _session_row(session, session_id, channel_id)
    if row.connected_at is not None:
        return  # the same connection announced again
    row.connected_at, row.provider, row.hls_url = data.at, data.provider.value, data.hls_url
    session.add(row)

    live = await streams.live_of(session, channel_id)
    state = None
    if live is not None:
        current = await session.get(IngestSession, live.ingest_session_id) if live.ingest_session_id else None
        state = LiveSession(disconnected_at=live.disconnected_at,
                            current_connected_at=current.connected_at if current else None)
    action = on_connect(state, data.at, settings.reconnect_window_seconds)
    if action == ConnectAction.ATTACH_STALE:
        row.stream_id = row.stream_id or live.id  # its recording still belongs to that stream
        return
    if action == ConnectAction.CONTINUE:
        await streams.continue_with(session, live, row)
        log.info("stream continues with a new ingest",
                 extra={"streamId": str(live.id), "channelId": channel_id})
        return
    if action == ConnectAction.END_AND_START:
        await streams.end(session, live, end_time=live.disconnected_at, requested=False)
    stream = await streams.prepared_of(session, channel_id)
    if stream is None:
        channel = await channels.get(session, channel_id)
        stream = await streams.create(
            session, channel_id=channel_id, owner_id=channel.owner_id if channel else None,
            title=streams.channel_name(channel, settings.fallback_stream_title))
    await streams.go_live(session, stream, at=data.at, ingest=row)
    log.info("stream is live", extra={"streamId": str(stream.id), "channelId": channel_id})


async def on_disconnected(session: AsyncSession, data: IngestDisconnected | IngestErrored) -> None:
    ids = _ids(data.channel_id, data.ingest_session_id)
    if ids is None:
        return
    channel_id, session_id = ids
    await streams.lock_channel(session, channel_id)
    row = await _session_row(session, session_id, channel_id)
    if row.disconnected_at is not None:
        return
    row.disconnected_at = data.at
    session.add(row)
    fed = (await session.exec(select(Stream).where(
        Stream.ingest_session_id == session_id, Stream.status == StreamStatus.LIVE.value,
        col(Stream.disconnected_at).is_(None)).with_for_update())).all()
    for stream in fed:
        stream.disconnected_at = data.at  # LIVE until the reconnect window closes
        session.add(stream)


async def on_recording_ready(session: AsyncSession, data: RecordingReady, at: datetime) -> None:
    ids = _ids(data.channel_id, data.ingest_session_id)
    if ids is None:
        return
    channel_id, session_id = ids
    await streams.lock_channel(session, channel_id)
    row = await _session_row(session, session_id, channel_id)
    if row.recording_ready_at is not None:
        return
    row.recording_ready_at = at
    row.vod_url = data.vod_url or None
    row.vod_duration_seconds = data.duration_seconds
    session.add(row)
    await session.flush()
    fed = [col(Stream.ingest_session_id) == session_id]
    if row.stream_id is not None:
        fed.append(col(Stream.id) == row.stream_id)
    ending = (await session.exec(select(Stream).where(
        or_(*fed), Stream.status == StreamStatus.ENDING.value).with_for_update())).all()
    for stream in ending:
        if stream.vod_requested_at is not None:
            # its VOD is being joined from the parts that were in when the wait ran out
            log.warning("a part's recording came after its stream's parts were sent to be joined; left out",
                        extra={"streamId": str(stream.id), "sessionId": session_id})
            continue
        await streams.settle(session, stream)


async def on_vod_joined(session: AsyncSession, data: VodJoined) -> None:
    channel_id = clean_id(data.channel_id)
    if channel_id is None:
        return
    await streams.lock_channel(session, channel_id)
    stream = await streams.get(session, data.stream_id, for_update=True)
    if stream is None or stream.channel_id != channel_id:
        log.warning("joined VOD of an unknown stream ignored", extra={"streamId": data.stream_id})
        return
    await streams.joined(session, stream, data.vod_url)


async def on_thumbnail(session: AsyncSession, data: ThumbnailUpdated, at: datetime) -> None:
    channel_id = clean_id(data.channel_id)
    if channel_id is None:
        return
    await streams.lock_channel(session, channel_id)
    stream = await streams.live_of(session, channel_id) or (await session.exec(
        select(Stream).where(Stream.channel_id == channel_id, Stream.status == StreamStatus.ENDING.value)
        .order_by(col(Stream.end_time).desc()).limit(1).with_for_update())).first()
    if stream is None or (stream.thumbnail_at is not None and stream.thumbnail_at > at):
        return
    stream.thumbnail_url, stream.thumbnail_at = data.url, at
    session.add(stream)


# ---- the sweeper --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Swept:
    moved: int  # streams the pass moved on
    active: int  # streams LIVE or ENDING when it began: something for the next pass to watch


async def sweep(db: Database, settings: Settings) -> Swept:
    """One pass: LIVE streams whose encoder left longer than the window ago -> ENDING; ENDING
    streams whose recording never came -> ARCHIVED without one."""
    moved = 0
    now = streams.now()
    window_start = now - timedelta(seconds=settings.reconnect_window_seconds)
    give_up = now - timedelta(seconds=settings.recording_wait_seconds)
    join_give_up = now - timedelta(seconds=settings.vod_join_wait_seconds)
    async with db.session() as session:
        counts = dict((await session.exec(select(Stream.status, func.count()).where(
            col(Stream.status).in_([StreamStatus.LIVE.value, StreamStatus.ENDING.value]))
            .group_by(Stream.status))).all())
        STREAMS_LIVE.set(counts.get(StreamStatus.LIVE.value, 0))
        if not counts:
            return Swept(0, 0)
        expired = (await session.exec(select(Stream.id, Stream.channel_id).where(
            Stream.status == StreamStatus.LIVE.value, col(Stream.disconnected_at) < window_start))).all()
        waiting = (await session.exec(select(Stream.id, Stream.channel_id).where(
            Stream.status == StreamStatus.ENDING.value,
            or_(col(Stream.vod_requested_at).is_(None) & (col(Stream.end_time) < give_up),
                col(Stream.vod_requested_at) < join_give_up)))).all()
    for stream_id, channel_id in expired:
        async with db.session() as session:
            await streams.lock_channel(session, channel_id)
            stream = await streams.get(session, stream_id, for_update=True)
            window = settings.reconnect_window_seconds
            if (stream is not None and stream.status == StreamStatus.LIVE.value
                    and window_expired(stream.disconnected_at, streams.now(), window)):
                await streams.end(session, stream, end_time=stream.disconnected_at, requested=False)
                moved += 1
            await session.commit()
    for stream_id, channel_id in waiting:
        async with db.session() as session:
            await streams.lock_channel(session, channel_id)
            stream = await streams.get(session, stream_id, for_update=True)
            if stream is not None and stream.status == StreamStatus.ENDING.value:
                joining = stream.vod_requested_at is not None
                if joining:
                    log.warning("the joined VOD did not come; archiving with the longest part",
                                extra={"streamId": str(stream_id)})
                await streams.settle(session, stream, waited_out=True, force=joining)
                moved += int(stream.status == StreamStatus.ARCHIVED.value)
            await session.commit()
    return Swept(moved, sum(counts.values()))


class Sweeper:
    """Runs `sweep` every `sweep_interval_seconds` while a stream is LIVE or ENDING, and less often
    while none is: nothing can come due sooner than the shortest of the reconnect window and the
    two recording waits after a stream goes LIVE, so a pass at that spacing still sees it LIVE
    (or ENDING) in time to go back to the short interval. An idle platform sweeps every 10 s."""

    __name__ = "streams-sweeper"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.active = True  # until a pass has looked
        self._stop = asyncio.Event()

    def interval(self) -> float:
        s = self.settings
        if self.active:
            return s.sweep_interval_seconds
        soonest = min(s.reconnect_window_seconds, s.recording_wait_seconds, s.vod_join_wait_seconds)
        return max(s.sweep_interval_seconds, soonest)

    async def _pass(self, db: Database) -> None:
        self.active = True  # a failed pass knows nothing: the short interval
        self.active = (await sweep(db, self.settings)).active > 0

    async def __call__(self, runtime) -> None:
        await every(self.interval, lambda: self._pass(runtime.db), self._stop, log=log, failed="sweep failed")

    def stop(self) -> None:
        self._stop.set()
