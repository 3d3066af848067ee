import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, StrictBool, StringConstraints
from sqlalchemy import Column, DateTime, LargeBinary, func
from sqlmodel import Field, SQLModel

from channels_service.schemas import ApiModel, UtcDateTime, single_line

SimulcastStateName = Literal["idle", "connecting", "live", "failed"]


class SimulcastDestination(SQLModel, table=True):
    """An RTMP(S) destination the channel's live source is copied to. The key is stored only as
    Fernet ciphertext (SIMULCAST_ENCRYPTION_KEY); `key_suffix` is what the owner sees again."""

    __tablename__ = "channel_simulcast_destinations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    channel_id: uuid.UUID = Field(foreign_key="channels.id", index=True, ondelete="CASCADE")
    name: str
    url: str
    key_ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False), repr=False)
    key_suffix: str
    enabled: bool = True
    # reported by the ingest node forwarding it (media.simulcast.state_changed); `state_at` orders them
    state: str = "idle"
    last_error: str | None = None
    state_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now(), onupdate=func.now()))

    def __repr__(self) -> str:  # never let a debug print show the ciphertext or the URL's userinfo
        return f"SimulcastDestination(id={self.id!s}, channel_id={self.channel_id!s})"


DestinationName = Annotated[str, StringConstraints(min_length=1, max_length=80, strip_whitespace=True),
                            AfterValidator(single_line)]
DestinationUrl = Annotated[str, StringConstraints(min_length=1, max_length=512, strip_whitespace=True)]
DestinationKey = Annotated[str, StringConstraints(min_length=1, max_length=512, strip_whitespace=True)]


class DestinationCreate(ApiModel):
    name: DestinationName
    url: DestinationUrl
    """rtmp:// or rtmps:// server URL; the key is appended as its last path segment."""
    stream_key: DestinationKey
    enabled: StrictBool = True


class DestinationUpdate(ApiModel):
    """Fields left out keep their value; a new `streamKey` replaces the stored one."""

    name: DestinationName | None = None
    url: DestinationUrl | None = None
    stream_key: DestinationKey | None = None
    enabled: StrictBool | None = None


class Destination(ApiModel):
    id: str
    channel_id: str
    name: str
    url: str
    stream_key_last4: str
    """The key itself is never answered again after it was set."""
    enabled: bool
    state: SimulcastStateName
    last_error: str | None
    state_changed_at: UtcDateTime | None
    created_at: UtcDateTime

    @classmethod
    def of(cls, row: SimulcastDestination, *, live: bool) -> "Destination":
        # a state reported for a session that has ended is no longer news: idle while offline
        state = row.state if live and row.enabled else "idle"
        return cls(id=str(row.id), channel_id=str(row.channel_id), name=row.name, url=row.url,
                   stream_key_last4=row.key_suffix, enabled=row.enabled, state=state,
                   last_error=row.last_error if state != "idle" else None,
                   state_changed_at=row.state_at, created_at=row.created_at)


class DestinationList(ApiModel):
    items: list[Destination]
