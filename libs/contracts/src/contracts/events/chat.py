"""Payloads published by the chat service and its edges."""

from pydantic import NonNegativeInt, PositiveInt

from contracts.base import Id, UtcDateTime, WireModel


class ChatUser(WireModel):
    """The author of a message, as shown beside it."""

    id: Id
    """The user's id."""
    username: str
    """The user's handle."""
    display_name: str
    """The user's display name."""
    badges: list[str]
    """Badges shown in this channel: ``owner`` or ``moderator``, then ``subscriber:<tier>``
    (``subscriber:BASIC``, ``subscriber:PREMIUM``, ``subscriber:VIP``) for a subscriber."""


class ChatMessage(WireModel):
    """An accepted chat message, the message object of API.md (``chat.message``)."""

    id: Id
    """The message's id."""
    seq: PositiveInt | None = None
    """The CHAT JetStream stream sequence of this event: strictly increasing within a room (not by
    one: all rooms share the stream's sequence). Only known after JetStream stored the message, so
    the published payload leaves it out (null); readers take it from the JetStream message
    metadata, and API answers and WebSocket frames always carry it."""
    channel_id: Id
    """The channel whose room it was sent to."""
    stream_id: Id | None
    """The stream that was on when it was sent; null when the channel was offline."""
    user: ChatUser
    """The author."""
    content: str
    """The text, 1-500 characters after trimming."""
    created_at: UtcDateTime
    """When the chat service accepted it."""
    deleted_at: UtcDateTime | None
    """When it was deleted; null for a visible message."""


class ChatMessageDeleted(WireModel):
    """A message was soft-deleted and must disappear from every viewer (``chat.deleted``)."""

    message_id: Id
    """The deleted message."""
    channel_id: Id
    """Its channel."""
    seq: PositiveInt | None = None
    """Position of this deletion among the room's chat events (the CHAT stream sequence); null
    on the wire, taken from the JetStream message metadata by readers, like ``ChatMessage.seq``."""


class ChatReport(WireModel):
    """A viewer reported a message or a user to the channel's moderators (``chat.report.created``)."""

    id: Id
    """The report's id."""
    channel_id: Id
    """The channel it concerns."""
    reporter_id: Id
    """The user who reported."""
    message_id: Id | None = None
    """The reported message, if a message was reported."""
    user_id: Id | None = None
    """The reported user, if a user was reported."""
    reason: str
    """The reporter's explanation."""
    created_at: UtcDateTime
    """When it was filed."""


class ChatPresence(WireModel):
    """One edge's snapshot of one room (``chat.presence``); the latest snapshot per edge wins."""

    edge_id: Id
    """The edge process that counted."""
    channel_id: Id
    """The room's channel."""
    connections: NonNegativeInt
    """Open sockets joined to the room on this edge, anonymous viewers included."""
    users: NonNegativeInt
    """Distinct signed-in users among those sockets."""
    at: UtcDateTime
    """When the snapshot was taken."""
