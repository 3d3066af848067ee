import uuid
from datetime import datetime

from typing import Literal

from pydantic import Field as PydField, StrictBool
from sqlalchemy import Column, DateTime, Index, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from channels_service.schemas import (ApiModel, Category, ChannelName, Description, Slug, Tag, UserSummary,
                                      UtcDateTime)


class Channel(SQLModel, table=True):
    """A creator's channel; a creator may own several (up to `MAX_CHANNELS_PER_USER`). The stream
    key lives in its own table (`channel_stream_keys`) so that nothing that serialises a channel can
    ever carry it."""

    __tablename__ = "channels"
    __table_args__ = (
        # the directory's order: live first, by viewer count, then newest
        Index("ix_channels_directory", "is_live", "viewer_count", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(index=True)
    slug: str = Field(unique=True)
    name: str
    description: str | None = None
    category: str | None = Field(default=None, index=True)
    tags: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False,
                                                                   server_default=text("'{}'")))
    is_public: bool = True
    avatar: str | None = None
    banner: str | None = None
    follower_count: int = 0
    view_count: int = 0
    # projection of the streams service's events (stream.started / ended / archived / viewers)
    is_live: bool = False
    live_stream_id: str | None = None
    live_started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    viewer_count: int = 0
    viewer_count_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # where the creator sends video: our own ingest, or a hosted provider (providers/)
    provider: str = Field(default="local", sa_column=Column(String, nullable=False, server_default="local"))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now(), onupdate=func.now()))


# ---- API models (Create / Update / Public) ---------------------------------------------------

Provider = Literal["local", "mux", "cloudflare"]
PROVIDER_DOC = ("Where the creator sends video: `local` (this platform's RTMP/SRT ingest), `mux` (Mux Video) "
                "or `cloudflare` (Cloudflare Stream); a hosted provider must be configured on the server.")

class ChannelCreate(ApiModel):
    name: ChannelName
    slug: Slug | None = PydField(default=None, description=(
        "3-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit. "
        "Derived from the name when absent."))
    description: Description | None = None
    category: Category | None = PydField(default=None, description="Free-text slug, e.g. 'just-chatting'.")
    tags: list[Tag] = PydField(default_factory=list, max_length=10)
    is_public: StrictBool = PydField(default=True,
                                     description="Listed in the directory (unlisted otherwise).")
    provider: Provider = PydField(default="local", description=PROVIDER_DOC)


class ChannelUpdate(ApiModel):
    """Only the fields sent change. `description`, `category`, `avatar` and `banner` may be null to
    clear them; the others may not be null."""

    # a non-Optional type with a None default: absent is fine, an explicit null is a 422
    name: ChannelName = None  # type: ignore[assignment]
    slug: Slug = None  # type: ignore[assignment]
    description: Description | None = None
    category: Category | None = None
    tags: list[Tag] = PydField(default=None, max_length=10)  # type: ignore[assignment]
    is_public: StrictBool = None  # type: ignore[assignment]
    provider: Provider = PydField(default=None, description=PROVIDER_DOC + (  # type: ignore[assignment]
        " Switching creates the new provider's live stream first and refuses (409) while the channel is live."))
    avatar: str | None = PydField(default=None, max_length=500, description=(
        "URL of an image already uploaded to this platform's media store, or null."))
    banner: str | None = PydField(default=None, max_length=500, description=(
        "URL of an uploaded banner (see POST /api/upload/banner), or null."))


class ChannelPublic(ApiModel):
    id: str
    slug: str
    name: str
    description: str | None
    category: str | None
    tags: list[str]
    avatar: str | None
    banner: str | None
    is_public: bool
    follower_count: int
    view_count: int
    is_live: bool
    live_stream_id: str | None
    viewer_count: int
    owner_id: str
    provider: str
    created_at: UtcDateTime
    creator: UserSummary

    @classmethod
    def of(cls, channel: Channel, creator: UserSummary) -> "ChannelPublic":
        return cls(id=str(channel.id), slug=channel.slug, name=channel.name, description=channel.description,
                   category=channel.category, tags=list(channel.tags or []), avatar=channel.avatar,
                   banner=channel.banner, is_public=channel.is_public, follower_count=channel.follower_count,
                   view_count=channel.view_count, is_live=channel.is_live,
                   live_stream_id=channel.live_stream_id,
                   viewer_count=channel.viewer_count if channel.is_live else 0,
                   owner_id=str(channel.owner_id), provider=channel.provider or "local",
                   created_at=channel.created_at, creator=creator)


class ChannelDetail(ChannelPublic):
    """GET /api/channels/{slug}: the channel plus what the caller may do with it."""

    is_following: bool = PydField(description="The caller follows this channel (false when anonymous).")
    can_moderate: bool = PydField(description="The caller is the owner or a moderator.")
