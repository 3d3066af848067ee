from typing import ClassVar

from pydantic import Field

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    # presence counts live in memory: streams never connects to Valkey, so a deployment gives it
    # no REDIS_URL (nor the Valkey password)
    required_in_prod: ClassVar[frozenset[str]] = ServiceSettings.required_in_prod - {"redis_url"}

    service_name: str = "streams"
    port: int = 8103

    # API.md: an encoder that reconnects within this many seconds continues the same stream
    reconnect_window_seconds: float = Field(10.0, ge=0)
    # how often LIVE streams whose encoder left are checked against the window (and ENDING ones
    # against recording_wait_seconds)
    sweep_interval_seconds: float = Field(1.0, gt=0)
    # an ENDING stream whose recording never arrives (recording off, provider without one, a
    # failed remux) is archived without a VOD after this long
    # (the same wait holds for each part of a stream fed by several connections: after it, the
    # VOD is made of the parts that came, and the missing ones are logged)
    recording_wait_seconds: float = Field(1800.0, ge=0)
    # a stream whose parts the media gateway is joining (stream.vod_requested) is archived with
    # its longest part if media.vod.joined has not come after this long (a re-encode of hours of
    # video, or a gateway outage); the joined VOD replaces it whenever it comes
    vod_join_wait_seconds: float = Field(7200.0, ge=0)

    # a chat edge not heard from for this long no longer counts towards viewer totals
    presence_ttl_seconds: float = Field(15.0, gt=0)
    # how often viewer totals are compared with the stored counts
    viewers_tick_seconds: float = Field(0.25, gt=0)
    # EVENTS.md: stream.viewers at most once a second per stream
    viewers_publish_interval_seconds: float = Field(1.0, ge=0)

    # a channel missing from the projection (its channel.created not here yet) is asked of the
    # channels service for this long before the answer is 404
    channel_lookup_timeout_seconds: float = Field(1.0, gt=0)

    # stream history (a channel's past broadcasts and their VODs) is kept; set this to delete
    # archived streams that ended longer ago (streams_service/retention.py)
    streams_retention_days: float | None = Field(None, gt=0)

    # title of a stream created by an ingest whose channel this service has not heard of yet
    fallback_stream_title: str = "Live stream"
