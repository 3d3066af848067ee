"""Reports: a viewer flags a message or a user to the channel's moderators."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from contracts.base import UtcDateTime
from pydantic import StringConstraints
from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel

from chat_service.messages.models import ApiModel, MessagePublic


class ReportStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class Report(SQLModel, table=True):
    __tablename__ = "chat_reports"
    __table_args__ = (Index("ix_chat_reports_channel_created", "channel_id", "created_at", "id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    channel_id: str
    reporter_id: str
    message_id: str | None = None
    user_id: str | None = None
    reason: str
    status: str = ReportStatus.OPEN.value
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    resolved_by: str | None = None


Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ReportCreate(ApiModel):
    """`messageId` or `userId` (or both) name what is reported; `reason` is free text."""

    channel_id: Id
    message_id: Id | None = None
    user_id: Id | None = None
    # no control characters but newlines and tabs: PostgreSQL refuses NUL in text (it answered 500)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True,
                                             pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]


class ReportUpdate(ApiModel):
    status: Literal["resolved", "dismissed", "open"]


class ReportPublic(ApiModel):
    id: str
    channel_id: str
    reporter_id: str
    message_id: str | None
    user_id: str | None
    reason: str
    status: ReportStatus
    created_at: UtcDateTime
    resolved_at: UtcDateTime | None
    resolved_by: str | None
    message: MessagePublic | None = None
    """The reported message as it was stored, deleted or not: only for the channel's owner and
    moderators (null for anyone else, and when none was reported or it is gone)."""

    @classmethod
    def of(cls, report: Report, message: dict | None = None) -> "ReportPublic":
        return cls(id=str(report.id), channel_id=report.channel_id, reporter_id=report.reporter_id,
                   message_id=report.message_id, user_id=report.user_id, reason=report.reason,
                   status=ReportStatus(report.status), created_at=report.created_at,
                   resolved_at=report.resolved_at, resolved_by=report.resolved_by,
                   message=MessagePublic.model_validate(message) if message else None)


class ReportPage(ApiModel):
    items: list[ReportPublic]
    next_cursor: str | None = None
