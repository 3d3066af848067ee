"""Persisted chat messages and the API's message shapes."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from contracts.base import UtcDateTime
from pydantic import StringConstraints
from pydantic import Field as PydField
from sqlalchemy import BigInteger, Column, DateTime, Index
from sqlalchemy.dialects.postgresql import JSONB
from servicekit.schemas import ApiModel
from sqlmodel import Field, SQLModel


class MessageRow(SQLModel, table=True):
    """One accepted message, written by the persister from the CHAT stream (idempotent by id)."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_channel_seq", "channel_id", "seq"),
        Index("ix_chat_messages_stream_seq", "stream_id", "seq"),
        # replay windows: a stream's messages by time since its start
        Index("ix_chat_messages_stream_created", "stream_id", "created_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    # the CHAT stream sequence (see README: strictly increasing per room, not by one)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    channel_id: str
    stream_id: str | None = None
    user_id: str = Field(index=True)
    username: str
    display_name: str
    badges: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    content: str
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    persisted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))

    def to_api(self) -> dict:
        return {
            "id": str(self.id), "seq": self.seq, "channelId": self.channel_id, "streamId": self.stream_id,
            "user": {"id": self.user_id, "username": self.username, "displayName": self.display_name,
                     "badges": list(self.badges)},
            "content": self.content, "createdAt": _iso(self.created_at),
            "deletedAt": _iso(self.deleted_at) if self.deleted_at else None,
        }


class Tombstone(SQLModel, table=True):
    """A persisted deletion, kept whether or not its message is persisted yet: the persister
    applies it to a message that arrives later (batches can commit out of stream order)."""

    __tablename__ = "chat_message_tombstones"

    id: uuid.UUID = Field(primary_key=True)
    deleted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class MessageUser(ApiModel):
    id: str
    username: str
    display_name: str
    badges: list[str]


class MessagePublic(ApiModel):
    """The message object of API.md. `seq` is the CHAT stream sequence: it strictly increases
    within a room but skips numbers (other rooms share the sequence); hand the last one seen back
    as `since` to resume."""

    id: str
    seq: int
    channel_id: str
    stream_id: str | None
    user: MessageUser
    content: str
    created_at: UtcDateTime
    deleted_at: UtcDateTime | None
    offset_seconds: float | None = PydField(
        None, description="Seconds from the start of the message's stream (chat replay on its VOD); given "
                          "where a stream's messages are read (GET /api/streams/{id}/messages), null elsewhere")


# length and blank checks belong to the send pipeline (they are chat:error codes on the socket);
# the schema only bounds the body so a huge field is refused before it is read into a message
Content = Annotated[str, StringConstraints(max_length=10_000)]
Nonce = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class MessageCreate(ApiModel):
    """`POST /api/messages`: `channelId` or `streamId` names the room."""

    channel_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    stream_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    content: Content
    nonce: Nonce | None = PydField(None, description="Client id for deduplication: resending the same "
                                                      "nonce within 5 minutes answers the same message")


class StreamMessageCreate(ApiModel):
    """`POST /api/streams/{id}/messages`."""

    content: Content
    nonce: Nonce | None = None


class MessagePage(ApiModel):
    """History, oldest first. `nextCursor` is the `before` value that pages further back."""

    items: list[MessagePublic]
    next_cursor: str | None = None
