import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel


class IngestSession(SQLModel, table=True):
    """One encoder connection as the media gateway reported it (`media.*` events).

    A row may be created by whichever of its events arrives first (they can come out of order);
    the newest connected one of a channel is that channel's current ingest state. Recordings are
    made per connection, so this is also where a recording waits for its stream to end.
    """

    __tablename__ = "streams_ingest_sessions"
    __table_args__ = (Index("ix_streams_ingest_sessions_channel", "channel_id", "connected_at"),)

    id: str = Field(primary_key=True)
    channel_id: str
    provider: str | None = None
    # the stream it fed first (null until a connect attached it)
    stream_id: uuid.UUID | None = Field(default=None, index=True)
    connected_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    disconnected_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    hls_url: str | None = None
    recording_ready_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    vod_url: str | None = None
    vod_duration_seconds: float | None = None
