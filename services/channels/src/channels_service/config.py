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
