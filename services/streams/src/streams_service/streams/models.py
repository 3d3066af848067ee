import uuid
from datetime import datetime

from pydantic import Field as PydField
from sqlalchemy import CheckConstraint, Column, DateTime, Index, func, text
from sqlmodel import Field, SQLModel

from contracts.events.streams import Stream as StreamPayload

from streams_service.schemas import ApiModel, Description, Title, UtcDateTime
from streams_service.streams.lifecycle import StreamStatus

_STATUSES = ", ".join(f"'{s.value}'" for s in StreamStatus)


class Stream(SQLModel, table=True):
    """One broadcast session of a channel, from its preparation to its archived recording."""

    __tablename__ = "streams"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="ck_streams_status"),
        # at most one LIVE and one prepared (OFFLINE) session per channel
        Index("uq_streams_channel_live", "channel_id", unique=True, postgresql_where=text("status = 'LIVE'")),
        Index("uq_streams_channel_offline", "channel_id", unique=True,
              postgresql_where=text("status = 'OFFLINE'")),
        # a channel's list, newest first
        Index("ix_streams_channel_created", "channel_id", "created_at", "id"),
        # the sweeper and the viewer counter look at LIVE and ENDING streams only
        Index("ix_streams_active", "status", postgresql_where=text("status IN ('LIVE', 'ENDING')")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    channel_id: str
    # copied from the channel projection; null only while that projection has not arrived yet
    owner_id: str | None = None
    title: str
    description: str | None = None
    status: str = StreamStatus.OFFLINE.value
    start_time: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    end_time: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    viewer_count: int = 0
    peak_viewers: int = 0
    # when stream.viewers was last published: the once-a-second limit holds across replicas
    viewers_published_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    duration: int | None = None
    hls_url: str | None = None
    thumbnail_url: str | None = None
    thumbnail_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    vod_url: str | None = None
    is_archived: bool = False
    # the encoder connection currently feeding it (media.ingest.* ingestSessionId)
    ingest_session_id: str | None = None
    provider: str | None = None
    # when the current encoder left; the stream stays LIVE for the reconnect window
    disconnected_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # when the media gateway was asked to join its parts into one VOD (stream.vod_requested), once
    vod_requested_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))

    def to_payload(self) -> StreamPayload:
        """The stream object as events carry it."""
        return StreamPayload(**StreamPublic.of(self).model_dump())


# ---- API models (Create / Update / Public) ---------------------------------------------------

class StreamCreate(ApiModel):
    channel_id: str = PydField(min_length=1, max_length=200)
    title: Title
    description: Description | None = None


class StreamStart(ApiModel):
    """Go live: both fields are optional and update the session when given."""

    title: Title | None = None
    description: Description | None = None


class StatusUpdate(ApiModel):
    status: StreamStatus


class StreamPublic(ApiModel):
    id: str
    channel_id: str
    title: str
    description: str | None
    status: StreamStatus
    start_time: UtcDateTime | None
    end_time: UtcDateTime | None
    viewer_count: int
    peak_viewers: int
    duration: int | None = PydField(description="Whole seconds from start to end; null until it ended.")
    hls_url: str | None = PydField(description="Master playlist (HLS, adaptive); null unless LIVE.")
    thumbnail_url: str | None
    vod_url: str | None = PydField(description="The recording, once ready (ARCHIVED).")
    is_archived: bool = PydField(description="Whether the recording is listed as a VOD.")
    created_at: UtcDateTime

    @classmethod
    def of(cls, stream: Stream) -> "StreamPublic":
        return cls(id=str(stream.id), channel_id=stream.channel_id, title=stream.title,
                   description=stream.description, status=StreamStatus(stream.status),
                   start_time=stream.start_time, end_time=stream.end_time, viewer_count=stream.viewer_count,
                   peak_viewers=stream.peak_viewers, duration=stream.duration, hls_url=stream.hls_url,
                   thumbnail_url=stream.thumbnail_url, vod_url=stream.vod_url, is_archived=stream.is_archived,
                   created_at=stream.created_at)


class HlsUrl(ApiModel):
    url: str = PydField(description="Master playlist of the live stream.")
