"""Payloads published by the auth service."""

from contracts.base import Id, WireModel


class UserProfile(WireModel):
    """A user's public identity, as other services cache it (``user.registered``, ``user.updated``)."""

    user_id: Id
    """The user's id."""
    username: str
    """Unique handle, 3-25 characters of ``[a-z0-9_]``."""
    display_name: str
    """Name shown next to the user's messages and channels."""
    avatar: str | None
    """URL of the avatar image, or null when the user has none."""


class UserBlock(WireModel):
    """One user hides another's chat from themselves (``user.blocked``, ``user.unblocked``)."""

    blocker_id: Id
    """The user who blocks (and stops seeing the other's messages)."""
    blocked_id: Id
    """The user who is blocked."""
