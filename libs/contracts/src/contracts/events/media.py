"""Payloads published by the media gateway.

Local ingest callbacks and provider webhooks (Mux, Cloudflare) are translated into these same
events, so the streams service never knows which provider carried a broadcast.
"""

from enum import StrEnum

from pydantic import NonNegativeFloat

from contracts.base import Id, UtcDateTime, WireModel


class MediaProvider(StrEnum):
    """Which ingest carried the broadcast."""

    LOCAL = "local"
    MUX = "mux"
    CLOUDFLARE = "cloudflare"


class _IngestEvent(WireModel):
    channel_id: Id
    """The channel the encoder publishes to."""
    provider: MediaProvider
    """Which ingest carried the broadcast."""
    ingest_session_id: Id
    """One encoder connection; a reconnect gets a new one."""
    at: UtcDateTime
    """When the provider saw it happen (events may arrive out of order; compare this)."""


class IngestConnected(_IngestEvent):
    """An encoder started publishing with a valid stream key (``media.ingest.connected``)."""

    hls_url: str | None = None
    """Master playlist of the live HLS output, when the provider already knows it."""


class IngestDisconnected(_IngestEvent):
    """The encoder stopped publishing (``media.ingest.disconnected``)."""


class IngestErrored(_IngestEvent):
    """The provider reported a failure of the ingest session (``media.ingest.errored``)."""

    error: str | None = None
    """The provider's description of the failure, if it gave one."""


class RecordingReady(WireModel):
    """The recording of an ingest session is playable as a VOD (``media.recording.ready``)."""

    channel_id: Id
    """The channel that broadcast."""
    ingest_session_id: Id
    """The ingest session that was recorded."""
    vod_url: str
    """Playback URL of the recording."""
    duration_seconds: NonNegativeFloat
    """Length of the recording."""


class ThumbnailUpdated(WireModel):
    """A newer thumbnail of the live broadcast exists (``media.thumbnail.updated``)."""

    channel_id: Id
    """The channel that is broadcasting."""
    url: str
    """URL of the thumbnail image."""


class VodJoined(WireModel):
    """A stream's recorded parts were joined into one VOD (``media.vod.joined``), the answer to
    ``stream.vod_requested``."""

    stream_id: Id
    """The stream whose VOD this is."""
    channel_id: Id
    """Its channel."""
    ingest_session_ids: list[Id]
    """The parts joined, in the order they play (as the request listed them)."""
    vod_url: str
    """Playback URL of the joined recording."""
    duration_seconds: NonNegativeFloat
    """Length of the joined recording."""
    reencoded: bool
    """Whether the parts had to be re-encoded to one format (their encoder settings differed);
    false when they were joined as they were."""


class SimulcastState(StrEnum):
    """Where a simulcast forwarder stands."""

    IDLE = "idle"
    CONNECTING = "connecting"
    LIVE = "live"
    FAILED = "failed"


class SimulcastStateChanged(WireModel):
    """A simulcast forwarder of a live session changed state (``media.simulcast.state_changed``)."""

    channel_id: Id
    """The channel that is broadcasting."""
    destination_id: Id
    """The destination forwarded to."""
    ingest_session_id: Id
    """The ingest session whose source is forwarded."""
    state: SimulcastState
    """idle (not forwarding), connecting, live (forwarding), failed (retrying with backoff)."""
    last_error: str | None = None
    """Why it failed (ffmpeg's message, the destination's key masked), or null."""
    at: UtcDateTime
    """When the forwarder changed state (compare this: events may arrive out of order)."""
