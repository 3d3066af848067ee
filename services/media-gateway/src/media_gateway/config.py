from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from servicekit.settings import ServiceSettings

# a DNS label (a StatefulSet pod's name): it is a URL path segment and a NATS subject token
NODE_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class Settings(ServiceSettings):
    # with several ingest nodes each must have its own name: two named alike would answer each
    # other's drops and HLS requests
    required_in_prod: ClassVar[frozenset[str]] = ServiceSettings.required_in_prod | {"ingest_node"}

    service_name: str = "media-gateway"
    port: int = 8105

    # retention (media_gateway/retention.py): provider webhook deliveries are kept to drop a
    # provider's redelivery (they retry for hours, not weeks); ended ingest sessions (and their
    # finished recording jobs) for support questions about past broadcasts
    provider_events_retention_days: float = 30
    ingest_sessions_retention_days: float = 90
    # raw recordings (record_dir) and remux leftovers (vod_dir) untouched this long are deleted
    # once nothing can still make a VOD of them: the session ended and its job is ready or failed
    # (a failed one's FLV waits this long for an operator to retry it), or the session is gone.
    # Files of open sessions, of pending/processing jobs and of ended sessions without a job (the
    # orphan sweep queues those) stay. KEEP_RECORDINGS keeps every raw FLV.
    recording_files_retention_hours: float = Field(24, gt=0)

    # where the platform keeps its files; the media folders below default to sub-folders of it
    data_dir: Path = Path("./.data")

    # ---- local ingest (nginx-rtmp) ------------------------------------------------------------
    # the ingest node this process runs on, beside its nginx-rtmp (Kubernetes: the StatefulSet pod's
    # name). Sessions record it; HLS URLs carry it (/hls/<node>/...) so the gateway asks this node,
    # and a drop of a session held elsewhere goes to its node (ingest.node.<node>.drop)
    ingest_node: str = Field("ingest-0", pattern=NODE_NAME)
    # how long a drop sent to another node waits for its answer (a dead node never answers: the
    # liveness sweep ends its sessions anyway)
    node_drop_timeout_seconds: float = Field(2.0, gt=0)
    # the RTMP application encoders publish to (rtmp://host/live + stream key)
    ingest_app: str = "live"
    # how nginx-rtmp reaches itself: used in the fallback on_publish answer, a push of the source
    # to <rtmp_internal_url>/src/<session>_src (when the source pull below could not be started)
    rtmp_internal_url: str = "rtmp://127.0.0.1:1935"
    # where this service reaches the ingest's RTMP port to start src's pull of a new session (a
    # paused play of src/<session>_src, held for the session's life); default rtmp_internal_url.
    # Off: the push above, which starts the source one key frame later (docs/benchmarks.md).
    ingest_rtmp_url: str | None = None
    ingest_source_pull: bool = True
    # how long on_publish waits for the pull before it answers with the push instead
    source_pull_timeout_seconds: float = 1.0
    # nginx-rtmp control module (internal port); unset: no active drop, on_update refusals only
    ingest_control_url: str | None = "http://127.0.0.1:8186/control"
    # nginx-rtmp statistics (rtmp_stat); default: /stat beside ingest_control_url
    ingest_stat_url: str | None = None
    # how often the ingest_* gauges (publishers, bandwidth in) are read from it; 0: never
    ingest_stats_interval_seconds: float = Field(10.0, ge=0)
    authorize_timeout_seconds: float = 2.0
    # nginx-rtmp calls on_update every 5 s while a publisher is live; a session silent for this
    # long lost its publish_done (nginx or this service was down) and is ended
    ingest_stale_seconds: float = 30.0
    liveness_poll_seconds: float = 5.0
    # refused publishes per encoder address before further attempts are refused without asking
    publish_failures_per_ip: int = 30
    publish_failure_window_seconds: int = 60

    # ---- SRT ingest (media_gateway/srt, docs/srt.md) ------------------------------------------
    # the UDP port this node's SRT listener takes publishes on (srt://host:port?streamid=KEY); each
    # is authorized in the handshake and relayed (-c copy) into the nginx-rtmp at rtmp_internal_url.
    # Unset: no SRT listener.
    srt_port: int | None = Field(None, ge=0, le=65535)
    srt_host: str = "0.0.0.0"
    # the receiver's buffer for retransmissions (SRTO_LATENCY; the larger of both sides' applies)
    srt_latency_ms: int = Field(120, ge=20, le=8000)

    # ---- live transcoding and the LL-HLS origin (media_gateway/llhls, docs/ll-hls.md) -----------
    # one ffmpeg per session plays src/<session>_src and writes every rendition of the ladder as
    # fragmented MP4; this process packages and serves them (GET /hls/...). Off: nothing is served.
    live_transcode: bool = True
    # the ABR ladder (the same INGEST_LADDER the ingest's config is rendered with), e.g. source,480p
    ingest_ladder: str | None = None
    transcoder_fps: int = Field(30, ge=1, le=120)
    # superfast, not veryfast: a live encode slower than real time is restarted (it cannot catch
    # up), and on a shared 2-core machine veryfast 480p fell 3 s behind every ~15 s (docs/benchmarks.md)
    transcoder_x264_preset: str = Field("superfast", pattern=r"^[a-z]+$")
    # how long on_publish waits for the transcoder to play src before it answers (it then gets the
    # encoder's first key frame); past this the answer goes out and the transcoder starts a key frame later
    transcoder_join_timeout_seconds: float = 1.5
    transcoder_restart_seconds: float = 1.0
    # a transcoder whose output falls this far behind the wall clock (a machine too busy for the
    # encode) is restarted at the live edge instead of staying late for the rest of the stream
    transcoder_max_lag_seconds: float = 3.0
    # at the end of a session: how long ffmpeg may take to finish by itself before it is stopped
    transcoder_end_grace_seconds: float = 2.0
    llhls_part_seconds: float = Field(1 / 3, gt=0.1, le=1.0)
    # segments of each rendition kept in memory as parts (the live edge); with a DVR window the
    # older ones are on disk (dvr_dir), without one the playlist lists just these
    llhls_window_segments: int = Field(6, ge=3, le=600)
    # DVR: the seconds of a live stream its playlists list so viewers can seek back (0: only the
    # window above). Costs disk on the ingest node: the ladder's bitrate x this (docs/ll-hls.md, "DVR")
    dvr_window_seconds: float = Field(1800, ge=0, le=6 * 3600)
    dvr_root: Path | None = None  # default <data_dir>/dvr; each node's sessions in <ingest_node>/
    # an ended session's playlists (with ENDLIST) stay this long for players finishing them
    llhls_linger_seconds: float = 60.0

    # ---- simulcast (media_gateway/simulcast): the live source copied to creators' RTMP(S) destinations
    simulcast_enabled: bool = True
    # a failed forwarder is retried after this, doubling up to simulcast_retry_max_seconds
    simulcast_retry_seconds: float = Field(2.0, gt=0)
    simulcast_retry_max_seconds: float = Field(60.0, gt=0)
    simulcast_lookup_timeout_seconds: float = Field(2.0, gt=0)

    hls_base_url: str = "/hls"  # public path of the origin's playlists (the gateway proxies it here)
    record_root: Path | None = None  # default <data_dir>/recordings; nginx-rtmp's record_path
    # VODs go to the object store (OBJECT_STORE_URL: S3 or a folder) under this prefix; the gateway
    # serves vod_base_url from it. vod_root only holds each MP4 while it is remuxed and uploaded.
    vod_key_prefix: str = "vod"
    vod_root: Path | None = None  # default <data_dir>/vod
    vod_base_url: str = "/vod"
    keep_recordings: bool = False  # keep the raw FLV once the VOD exists

    ffmpeg_binary: str = "ffmpeg"
    ffprobe_binary: str = "ffprobe"
    recording_max_attempts: int = 3
    recording_poll_seconds: float = 5.0
    # a worker heartbeats its "processing" job this often while ffmpeg runs (a remux may take up to
    # an hour); a job whose heartbeat is older than recording_stale_seconds was lost: claim it again
    recording_heartbeat_seconds: float = 30.0
    recording_stale_seconds: float = 180.0
    # a recording file untouched this long, of an ended session, with no job (its on_record_done
    # was lost) is queued anyway; the folder is scanned every recording_sweep_seconds
    recording_orphan_seconds: float = 120.0
    recording_sweep_seconds: float = 60.0
    thumbnail_interval_seconds: float = 30.0
    thumbnail_retry_seconds: float = 3.0  # until the first segment exists
    thumbnail_poll_seconds: float = 1.0
    thumbnail_height: int = 360

    # ---- provider webhooks --------------------------------------------------------------------
    mux_webhook_secret: SecretStr | None = None
    cloudflare_webhook_auth: SecretStr | None = None  # live-input notifications (cf-webhook-auth)
    cloudflare_webhook_secret: SecretStr | None = None  # video/recording webhooks (Webhook-Signature)
    webhook_tolerance_seconds: int = 300
    webhook_max_body_bytes: int = 1024 * 1024
    mux_playback_base_url: str = "https://stream.mux.com"
    # e.g. https://customer-<code>.cloudflarestream.com; gives live hlsUrls for Cloudflare inputs
    cloudflare_playback_base_url: str | None = None
    # live input id -> channel id, for inputs whose notifications carry no meta.channelId
    cloudflare_input_channels: dict[str, str] = Field(default_factory=dict)

    @property
    def ingest_rtmp_address(self) -> tuple[str, int]:
        url = urlsplit(self.ingest_rtmp_url or self.rtmp_internal_url)
        return url.hostname or "127.0.0.1", url.port or 1935

    @property
    def ingest_stat(self) -> str | None:
        if self.ingest_stat_url:
            return self.ingest_stat_url
        if self.ingest_control_url and self.ingest_control_url.rstrip("/").endswith("/control"):
            return self.ingest_control_url.rstrip("/").removesuffix("/control") + "/stat"
        return None

    @property
    def record_dir(self) -> Path:
        return (self.record_root or self.data_dir / "recordings").resolve()

    @property
    def dvr_dir(self) -> Path:
        return ((self.dvr_root or self.data_dir / "dvr") / self.ingest_node).resolve()

    @property
    def vod_dir(self) -> Path:
        return (self.vod_root or self.data_dir / "vod").resolve()


def configured(secret: SecretStr | None) -> str | None:
    """The secret's value, or None when unset or empty (an empty secret must never verify)."""
    if secret is None:
        return None
    value = secret.get_secret_value()
    return value or None
