from pydantic import Field

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    # Valkey holds the clip rate limits (shared by every replica); clips go to the object store

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
    # how often viewer totals are compared with the stored counts (a tick asks PostgreSQL only when
    # they can differ: viewers/service.py), and how often it looks anyway
    viewers_tick_seconds: float = Field(0.25, gt=0)
    viewers_recheck_seconds: float = Field(30.0, gt=0)
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

    # ---- clips (streams_service/clips) ----
    # clips a user may ask for per window (Valkey counter shared by every replica)
    clip_rate_limit: int = Field(5, ge=1)
    clip_rate_window_seconds: int = Field(60, ge=1)
    # where relative media URLs (the live /hls/... playlist, the /vod/... recording) are fetched
    # from; unset: PUBLIC_BASE_URL (the gateway). Inside a cluster, the gateway's Service URL.
    clip_source_base_url: str | None = None
    # the shortest segment the live origin writes: how far back in the live playlist a live clip
    # starts (the LL-HLS origin writes 1 s segments)
    clip_live_segment_seconds: float = Field(1.0, gt=0)
    # ffmpeg's longest wait for one read of the source, and for a whole cut
    clip_read_timeout_seconds: float = Field(15.0, gt=0)
    clip_cut_timeout_seconds: float = Field(120.0, gt=0)
    # how often the cutter looks for clips when no NOTIFY woke it: while its LISTEN connection is
    # down, and while it is up (every queued clip notifies: a stale claim of a dead cutter is what
    # this poll finds then)
    clip_poll_seconds: float = Field(2.0, gt=0)
    clip_listen_poll_seconds: float = Field(30.0, gt=0)
    ffmpeg_binary: str = "ffmpeg"
    ffprobe_binary: str = "ffprobe"
