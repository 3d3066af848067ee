from datetime import datetime

from sqlalchemy import ARRAY, Column, DateTime, Index, String, func, text
from sqlmodel import Field, SQLModel

from media_gateway.recordings.models import RecordingStatus as JoinStatus

__all__ = ["JoinStatus", "VodJoin"]


class VodJoin(SQLModel, table=True):
    """A stream's recorded parts to join into one VOD (stream.vod_requested): a durable job like a
    recording's, claimed, heartbeated and retried the same way (jobs.py)."""

    __tablename__ = "vod_joins"
    __table_args__ = (
        Index("ix_vod_joins_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )

    stream_id: str = Field(primary_key=True)
    channel_id: str
    # the ingest sessions whose recordings are joined, in the order they play
    parts: list[str] = Field(sa_column=Column(ARRAY(String), nullable=False))
    status: str = JoinStatus.PENDING.value
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                       server_default=func.now()))
    vod_url: str | None = None
    duration_seconds: float | None = None
    reencoded: bool | None = None
    error: str | None = None
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
