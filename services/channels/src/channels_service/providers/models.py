import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class ProviderStream(SQLModel, table=True):
    """The provider's live stream (Mux) or live input (Cloudflare) of a channel whose `provider`
    is not `local`. Kept apart from `channels`, like the local key: `stream_key` and `srt_url`
    (which carries the SRT passphrase) are secrets the owner must be able to read again."""

    __tablename__ = "channel_provider_streams"

    channel_id: uuid.UUID = Field(foreign_key="channels.id", primary_key=True, ondelete="CASCADE")
    provider: str
    stream_id: str = Field(index=True)
    stream_key: str = Field(repr=False)
    rtmp_url: str
    srt_url: str | None = Field(default=None, repr=False)
    playback_id: str | None = None
    playback_url: str | None = None
    # Cloudflare inputs are disabled when a stream is ended and enabled again at the next Go live
    enabled: bool = True
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now(), onupdate=func.now()))

    def __repr__(self) -> str:  # never let a debug print show the key
        return f"ProviderStream(channel_id={self.channel_id!s}, provider={self.provider})"
