"""Payloads of clips (published by the streams service, which owns them)."""

from pydantic import NonNegativeInt

from contracts.base import Id, UtcDateTime, WireModel


class Clip(WireModel):
    """A clip that is ready to play (``clip.created``): a short cut of a live or archived stream."""

    id: Id
    """The clip's id."""
    channel_id: Id
    """The channel whose stream was clipped."""
    stream_id: Id
    """The stream it was cut from."""
    title: str | None
    """Title the viewer gave it, or null."""
    url: str
    """The MP4 file."""
    thumbnail_url: str | None
    """A still from the clip, or null when none could be taken."""
    duration_seconds: NonNegativeInt
    """Length asked for (the file may be a little longer or shorter: cuts fall on key frames)."""
    creator: Id
    """The user who clipped it."""
    created_at: UtcDateTime
    """When it was asked for."""


class ClipDeleted(WireModel):
    """A clip was deleted by its creator, the channel owner or a moderator (``clip.deleted``)."""

    id: Id
    """The clip's id."""
    channel_id: Id
    """The channel it belonged to."""
    deleted_by: Id
    """Who deleted it."""
