import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class Block(SQLModel, table=True):
    """`blocker` no longer sees `blocked`'s chat messages."""

    __tablename__ = "blocks"

    blocker_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    blocked_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
