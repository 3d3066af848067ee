import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime, UniqueConstraint, func
from sqlmodel import Field, SQLModel

from contracts.events.media import MediaProvider

from media_gateway.schemas import ApiModel


class ProviderEvent(SQLModel, table=True):
    """Every provider delivery we acted on, once: a redelivered event id changes nothing."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_provider_events_provider_event_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    provider: str
    event_id: str
    event_type: str
    stream_id: str | None = None
    outcome: str
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                   server_default=func.now()))


class ProviderStream(SQLModel, table=True):
    """The newest state seen per provider stream, so a late delivery never moves it backwards."""

    __tablename__ = "provider_streams"

    provider: str = Field(primary_key=True)
    stream_id: str = Field(primary_key=True)
    channel_id: str | None = None
    last_state: str
    last_event_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))


class NoticeKind(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERRORED = "errored"
    RECORDING = "recording"


@dataclass(frozen=True)
class Notice:
    """A provider event in our terms: what happened to which stream of which channel, when."""

    provider: MediaProvider
    event_id: str
    event_type: str
    kind: NoticeKind
    stream_id: str
    at: datetime
    channel_id: str | None
    hls_url: str | None = None
    error: str | None = None
    vod_url: str | None = None
    duration_seconds: float | None = None


class Outcome(StrEnum):
    PUBLISHED = "published"  # a media.* event was staged
    DUPLICATE = "duplicate"  # this event id was handled before
    OUT_OF_ORDER = "outOfOrder"  # older than what we already know about the stream
    UNCHANGED = "unchanged"  # same state as already announced
    UNMAPPED = "unmapped"  # no channel for this provider stream
    IGNORED = "ignored"  # an event type we do not translate


class WebhookAck(ApiModel):
    status: Outcome
