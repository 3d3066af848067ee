import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, func
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from channels_service.schemas import ApiModel


class StreamKey(SQLModel, table=True):
    """A channel's current stream key. Kept apart from `channels` so no channel serialisation can
    carry it. The owner must be able to read it again, so the key itself is stored; lookups go
    through `key_hash` (SHA-256, unique) and the final comparison is constant-time."""

    __tablename__ = "channel_stream_keys"

    channel_id: uuid.UUID = Field(foreign_key="channels.id", primary_key=True, ondelete="CASCADE")
    stream_key: str = Field(repr=False)
    key_hash: str = Field(unique=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    rotated_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))

    def __repr__(self) -> str:  # never let a debug print show the key
        return f"StreamKey(channel_id={self.channel_id!s})"


class StreamKeyOut(ApiModel):
    stream_key: str
    rtmp_url: str = PydField(description="The server URL for the encoder (RTMPS for hosted providers).")
    srt_url: str | None = PydField(default=None, description=(
        "SRT ingest URL with its credentials, when the provider offers SRT (a secret like the key)."))
    provider: str = PydField(default="local", description="`local`, `mux` or `cloudflare`.")
    playback_url: str | None = PydField(default=None, description=(
        "The hosted provider's HLS playback URL (Mux playback id / Cloudflare customer subdomain); "
        "null for local ingest, whose streams carry their own hlsUrl."))
