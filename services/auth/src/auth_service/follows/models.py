import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class Follow(SQLModel, table=True):
    """The seed's `Follow`: one user follows another (channel follows are ChannelFollow, in channels)."""

    __tablename__ = "follows"

    follower_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    # indexed: followers of a user are listed and counted by this column alone
    followee_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE", index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
