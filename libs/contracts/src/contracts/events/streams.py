"""Payloads published by the streams service."""

from enum import StrEnum

from pydantic import NonNegativeInt

from contracts.base import Id, UtcDateTime, WireModel


class StreamStatus(StrEnum):
    """Lifecycle of a stream; it only ever moves forward, in this order."""

    OFFLINE = "OFFLINE"
    LIVE = "LIVE"
    ENDING = "ENDING"
    ARCHIVED = "ARCHIVED"


class Stream(WireModel):
    """The stream object of API.md (``stream.created``, ``.started``, ``.ended``, ``.archived``)."""

    id: Id
    """The stream's id."""
    channel_id: Id
    """The channel that broadcasts it."""
    title: str
    """Title shown on the stream page."""
    description: str | None
    """Free-text description, or null."""
    status: StreamStatus
    """Where the stream is in its lifecycle."""
    start_time: UtcDateTime | None
    """When it went LIVE; null before that."""
    end_time: UtcDateTime | None
    """When it stopped being LIVE; null before that."""
    viewer_count: NonNegativeInt
    """Viewers watching now."""
    peak_viewers: NonNegativeInt
    """Highest viewer count so far."""
    duration: NonNegativeInt | None
    """Whole seconds between start and end; null until the stream ended."""
    hls_url: str | None
    """Master playlist for live playback; null when not live."""
    thumbnail_url: str | None
    """Latest thumbnail, or null."""
    vod_url: str | None
    """The recording, once it is ready; null before."""
    is_archived: bool
    """Whether the recording is listed as a VOD."""
    created_at: UtcDateTime
    """When the stream session was created."""


class StreamStatusChanged(Stream):
    """The stream moved to a new status (``stream.status_changed``); ``status`` is the new one."""

    previous_status: StreamStatus
    """The status it left."""


class StreamViewers(WireModel):
    """Viewer count of a live stream (``stream.viewers``), at most once a second per stream."""

    stream_id: Id
    """The stream."""
    channel_id: Id
    """Its channel, so chat rooms can route the count without a lookup."""
    count: NonNegativeInt
    """Viewers watching now."""
    peak: NonNegativeInt
    """Highest count of this stream so far."""


class StreamEndRequested(WireModel):
    """The creator ended the stream; the media gateway must drop the ingest (``stream.end_requested``)."""

    stream_id: Id
    """The stream being ended."""
    channel_id: Id
    """Its channel, whose ingest session is to be dropped."""


class StreamVodRequested(WireModel):
    """A stream fed by several encoder connections ended and their recordings are in: the media
    gateway joins them into one VOD and answers with ``media.vod.joined`` (``stream.vod_requested``)."""

    stream_id: Id
    """The stream the VOD is for."""
    channel_id: Id
    """Its channel."""
    ingest_session_ids: list[Id]
    """The recorded parts (ingest sessions), in broadcast order: the VOD plays them in this order."""
