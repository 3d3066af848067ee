import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class ChannelFollow(SQLModel, table=True):
    __tablename__ = "channel_follows"

    channel_id: uuid.UUID = Field(foreign_key="channels.id", primary_key=True, ondelete="CASCADE")
    user_id: uuid.UUID = Field(primary_key=True, index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
