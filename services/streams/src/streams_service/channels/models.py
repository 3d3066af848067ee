from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class Channel(SQLModel, table=True):
    """Local projection of the channels service's channels (`channel.created` / `channel.updated`):
    just what streams needs to check ownership and to title a stream the ingest started."""

    __tablename__ = "streams_channels"

    id: str = Field(primary_key=True)
    owner_id: str = Field(index=True)
    name: str
    slug: str
    # time of the event this row reflects: an older event arriving late changes nothing
    synced_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
