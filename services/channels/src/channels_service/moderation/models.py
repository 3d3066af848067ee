import uuid
from datetime import datetime

from pydantic import Field as PydField, StrictBool
from sqlalchemy import Boolean, Column, DateTime, String, false, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from channels_service.schemas import ApiModel, BannedWord, Reason, UserSummary, UtcDateTime


class ChannelFilters(SQLModel, table=True):
    """Chat rules of a channel; chat applies them (it hears `channel.filters_updated`)."""

    __tablename__ = "channel_filters"

    channel_id: uuid.UUID = Field(foreign_key="channels.id", primary_key=True, ondelete="CASCADE")
    banned_words: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False,
                                                                           server_default=text("'{}'")))
    profanity_filter: bool = False
    slow_mode_seconds: int = 0
    followers_only: bool = False
    subscribers_only: bool = Field(default=False, sa_column=Column(Boolean, nullable=False,
                                                                   server_default=false()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now(), onupdate=func.now()))


class ChannelModerator(SQLModel, table=True):
    __tablename__ = "channel_moderators"

    channel_id: uuid.UUID = Field(foreign_key="channels.id", primary_key=True, ondelete="CASCADE")
    user_id: uuid.UUID = Field(primary_key=True, index=True)
    added_by: uuid.UUID
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))


class ChannelBan(SQLModel, table=True):
    """A ban (`until` null) or a timeout (`until` set). Expired timeouts are ignored on read."""

    __tablename__ = "channel_bans"

    channel_id: uuid.UUID = Field(foreign_key="channels.id", primary_key=True, ondelete="CASCADE")
    user_id: uuid.UUID = Field(primary_key=True, index=True)
    banned_by: uuid.UUID
    reason: str | None = None
    until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))


# ---- API models ------------------------------------------------------------------------------

class Filters(ApiModel):
    banned_words: list[str]
    profanity_filter: bool
    slow_mode_seconds: int
    followers_only: bool
    subscribers_only: bool = PydField(description=(
        "Only subscribers (ACTIVE, or CANCELLED before the renewal date) may send; owner and moderators "
        "are exempt."))

    @classmethod
    def of(cls, row: ChannelFilters) -> "Filters":
        return cls(banned_words=list(row.banned_words or []), profanity_filter=row.profanity_filter,
                   slow_mode_seconds=row.slow_mode_seconds, followers_only=row.followers_only,
                   subscribers_only=bool(row.subscribers_only))


class FiltersUpdate(ApiModel):
    """The GET shape; fields left out keep their value. Banned words are matched
    case-insensitively by chat, so they are stored lower-cased and without duplicates."""

    banned_words: list[BannedWord] = PydField(default=None, max_length=200)  # type: ignore[assignment]
    profanity_filter: StrictBool = None  # type: ignore[assignment]
    slow_mode_seconds: int = PydField(default=None, ge=0, le=3600)  # type: ignore[assignment]
    followers_only: StrictBool = None  # type: ignore[assignment]
    subscribers_only: StrictBool = None  # type: ignore[assignment]


class Moderator(ApiModel):
    user: UserSummary
    added_at: UtcDateTime


class BanCreate(ApiModel):
    user_id: uuid.UUID
    duration_seconds: int | None = PydField(default=None, ge=1, description=(
        "Timeout length; absent or null for a permanent ban. At most MAX_BAN_SECONDS (default a year)."))
    reason: Reason | None = None


class Ban(ApiModel):
    channel_id: str
    user_id: str
    user: UserSummary
    reason: str | None
    until: UtcDateTime | None = PydField(description="End of a timeout; null for a permanent ban.")
    banned_by: str
    created_at: UtcDateTime
