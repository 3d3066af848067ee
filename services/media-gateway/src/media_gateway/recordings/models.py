from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime, Index, func, text
from sqlmodel import Field, SQLModel

from media_gateway.schemas import ApiModel


class RecordingStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class Recording(SQLModel, table=True):
    """A finished nginx-rtmp recording waiting to become (or become) a VOD: a durable job, so a
    crash between on_record_done and the VOD only delays it."""

    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )

    session_id: str = Field(primary_key=True, foreign_key="ingest_sessions.id", ondelete="CASCADE")
    channel_id: str = Field(index=True)
    path: str
    status: str = RecordingStatus.PENDING.value
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                       server_default=func.now()))
    vod_url: str | None = None
    duration_seconds: float | None = None
    error: str | None = None
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))


class RecordDoneAccepted(ApiModel):
    session_id: str
    status: str
