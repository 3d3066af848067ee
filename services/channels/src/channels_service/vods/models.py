import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel

from channels_service.schemas import ApiModel, UtcDateTime


class ChannelVod(SQLModel, table=True):
    """A finished broadcast with a recording, from `stream.archived`."""

    __tablename__ = "channel_vods"
    __table_args__ = (Index("ix_channel_vods_listing", "channel_id", "archived_at", "id"),)

    id: str = Field(primary_key=True)  # the stream's id
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE")
    title: str
    vod_url: str
    duration: int | None = None
    start_time: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    end_time: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    thumbnail_url: str | None = None
    archived_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Vod(ApiModel):
    id: str
    title: str
    vod_url: str
    duration: int | None
    start_time: UtcDateTime | None
    end_time: UtcDateTime | None
    thumbnail_url: str | None
    archived_at: UtcDateTime

    @classmethod
    def of(cls, row: ChannelVod) -> "Vod":
        return cls(id=row.id, title=row.title, vod_url=row.vod_url, duration=row.duration,
                   start_time=row.start_time, end_time=row.end_time, thumbnail_url=row.thumbnail_url,
                   archived_at=row.archived_at)
