import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import Field as PydField
from sqlalchemy import CheckConstraint, Column, DateTime, Index, func, text
from sqlmodel import Field, SQLModel

from contracts.events.clips import Clip as ClipPayload

from streams_service.schemas import ApiModel, Title, UtcDateTime

MIN_SECONDS, MAX_SECONDS = 5, 60


class ClipStatus(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class Clip(SQLModel, table=True):
    """A short cut of a stream's live window or of its recording, stored as an MP4 with a still."""

    __tablename__ = "clips"
    __table_args__ = (
        CheckConstraint("status IN ('processing', 'ready', 'failed')", name="ck_clips_status"),
        CheckConstraint(f"duration_seconds BETWEEN {MIN_SECONDS} AND {MAX_SECONDS}", name="ck_clips_duration"),
        Index("ix_clips_channel_created", "channel_id", "created_at", "id"),
        # the cutter looks for processing clips only
        Index("ix_clips_processing", "created_at", postgresql_where=text("status = 'processing'")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    channel_id: str
    stream_id: uuid.UUID
    title: str | None = None
    status: str = ClipStatus.PROCESSING.value
    creator: str
    # what ffmpeg reads: the live master playlist, or the recording (then from start_seconds)
    source_url: str
    live: bool
    start_seconds: float | None = None
    duration_seconds: int
    url: str | None = None
    thumbnail_url: str | None = None
    # why a clip failed, for the operator (never shown to viewers)
    error: str | None = None
    # when a cutter took it; a claim older than CLIP_CUT_TIMEOUT_SECONDS is taken again
    claimed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))


class ChannelModerator(SQLModel, table=True):
    """Projection of channel.moderator_added/removed: moderators may delete a channel's clips.
    A removal is kept as a tombstone (present = false) with its time, so a late older event
    changes nothing."""

    __tablename__ = "streams_moderators"

    channel_id: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)
    present: bool
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


# ---- API models ----------------------------------------------------------------------------

class ClipCreate(ApiModel):
    stream_id: str = PydField(min_length=1, max_length=200)
    start_seconds: float | None = PydField(None, ge=0, description="Archived streams: where the clip starts. "
                                           "Live streams take the last durationSeconds and refuse it.")
    duration_seconds: int = PydField(ge=MIN_SECONDS, le=MAX_SECONDS)
    title: Title | None = None


class ClipAccepted(ApiModel):
    id: str
    status: ClipStatus


class ClipPublic(ApiModel):
    id: str
    channel_id: str
    stream_id: str
    title: str | None
    status: ClipStatus
    url: str | None = PydField(description="The MP4 file; null until ready.")
    thumbnail_url: str | None
    duration_seconds: int
    created_at: UtcDateTime
    creator: str = PydField(description="The user id of who clipped it.")

    @classmethod
    def of(cls, clip: Clip) -> "ClipPublic":
        return cls(id=str(clip.id), channel_id=clip.channel_id, stream_id=str(clip.stream_id), title=clip.title,
                   status=ClipStatus(clip.status), url=clip.url, thumbnail_url=clip.thumbnail_url,
                   duration_seconds=clip.duration_seconds, created_at=clip.created_at, creator=clip.creator)

    def to_payload(self) -> ClipPayload:
        return ClipPayload(id=self.id, channel_id=self.channel_id, stream_id=self.stream_id, title=self.title,
                           url=self.url or "", thumbnail_url=self.thumbnail_url,
                           duration_seconds=self.duration_seconds, creator=self.creator, created_at=self.created_at)
