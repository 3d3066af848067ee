from datetime import datetime

import uuid

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class ObservedStream(SQLModel, table=True):
    """How far each stream of ours has got, so that late or reordered stream events (a
    `stream.started` redelivered after its `stream.ended`) never move a channel backwards."""

    __tablename__ = "channel_observed_streams"

    stream_id: str = Field(primary_key=True)
    channel_id: uuid.UUID = Field(index=True)
    status_rank: int = 0  # 1 LIVE, 2 ENDING, 3 ARCHIVED (statuses only move forward)
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now(), onupdate=func.now()))
