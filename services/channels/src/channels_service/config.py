from datetime import timedelta

from pydantic import Field, SecretStr
from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "channels"
    port: int = 8102

    # what creators paste into OBS/ffmpeg as the server URL (the stream key is the other half)
    rtmp_url: str = "rtmp://localhost:1935/live"
    # the SRT ingest's public address (media-gateway's SRT_PORT behind it); srtUrl is this with the
    # stream key as the streamid (srt://host:port?streamid=KEY, the one field OBS asks for)
    srt_url: str = "srt://localhost:9000"

    # API.md Extensions: a creator may own several channels, up to this many (then 409)
    max_channels_per_user: int = Field(10, ge=1)

    # banner uploads (API.md: at most 5 MiB and 4096x4096 in; stored fitted within 1920x480)
    banner_max_bytes: int = 5 * 1024 * 1024
    banner_width_px: int = 1920
    banner_height_px: int = 480

    # longest timeout a moderator can give; no duration at all is a permanent ban
    max_ban_seconds: int = 365 * 24 * 3600

    # ---- simulcast (channels_service/simulcast) ------------------------------------------------
    # Fernet key(s) encrypting the destinations' stream keys at rest (Fernet.generate_key(); several,
    # comma-separated: the first encrypts, all decrypt, for rotation). Unset: simulcast answers 503.
    simulcast_encryption_key: SecretStr | None = None
    # allow destinations on loopback/private/link-local addresses (tests and labs only: otherwise a
    # creator could make the ingest nodes connect into the platform's own network)
    simulcast_allow_private_destinations: bool = False
    simulcast_max_destinations: int = Field(5, ge=1, le=50)
    # ---- live-video providers (channel `provider`: local | mux | cloudflare) ----------------------
    # Mux Video API access token (https://dashboard.mux.com/settings/access-tokens, Video read+write)
    mux_token_id: str | None = None
    mux_token_secret: SecretStr | None = None
    mux_api_base_url: str = "https://api.mux.com"  # overridden by tests (a local server)
    mux_rtmp_url: str = "rtmps://global-live.mux.com:443/app"
    mux_srt_url: str = "srt://global-live.mux.com:6001"
    mux_playback_base_url: str = "https://stream.mux.com"
    # Cloudflare Stream: account id and an API token with "Stream Write"
    cloudflare_account_id: str | None = None
    cloudflare_api_token: SecretStr | None = None
    cloudflare_api_base_url: str = "https://api.cloudflare.com/client/v4"
    # the account's customer subdomain, https://customer-<code>.cloudflarestream.com (playback URLs)
    cloudflare_playback_base_url: str | None = None
    # a provider call longer than this fails the request (503) instead of holding it open
    provider_timeout_seconds: float = Field(10.0, gt=0)

    # ---- subscriptions (channels_service/subscriptions) ---------------------------------------
    # one paid period: a new subscription renews this many days later, a renewal adds as many
    subscription_period_days: int = Field(30, ge=1, le=366)
    # how often the renewal job expires cancelled subscriptions past their date and renews active ones
    subscription_renewal_interval_seconds: float = Field(300.0, gt=0)

    @property
    def subscription_period(self) -> timedelta:
        return timedelta(days=self.subscription_period_days)
