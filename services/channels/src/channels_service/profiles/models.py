import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class CachedProfile(SQLModel, table=True):
    """Local copy of a user's public identity, fed by `user.registered` / `user.updated`.

    No service reads another's tables: channels learns usernames and avatars from auth's events.
    (Named with the service prefix: tests and tools load every service's models into one
    SQLModel metadata, where table names must not collide.)
    """

    __tablename__ = "channels_user_profiles"

    user_id: uuid.UUID = Field(primary_key=True)
    username: str | None = None
    display_name: str | None = None
    avatar: str | None = None
    # time of the event that wrote this row; an older event arriving late does not overwrite it.
    # Null for a row seeded from an access token's claims, which any event replaces.
    event_time: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now(), onupdate=func.now()))
