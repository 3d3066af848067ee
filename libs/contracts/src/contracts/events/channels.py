"""Payloads published by the channels service.

None of them carries a stream key: keys stay inside the channels service and travel only in the
``channels.ingest.authorize`` request, never in an event that every subscriber (and the stream's
storage) would keep.
"""

from pydantic import NonNegativeInt

from contracts.base import Id, UtcDateTime, WireModel


class Channel(WireModel):
    """The channel's public fields (``channel.created``, ``channel.updated``)."""

    id: Id
    """The channel's id."""
    slug: str
    """URL name, as in ``/streams/<slug>``."""
    name: str
    """Display name."""
    description: str | None
    """Free-text description, or null."""
    category: str | None
    """Category slug (free text), or null."""
    tags: list[str]
    """Tags, in the owner's order."""
    avatar: str | None
    """URL of the channel's avatar, or null."""
    banner: str | None
    """URL of the channel's banner, or null."""
    is_public: bool
    """Whether the channel is listed in the directory."""
    owner_id: Id
    """The user who owns the channel."""


class ChannelFollow(WireModel):
    """A user follows or unfollows a channel (``channel.followed``, ``channel.unfollowed``)."""

    channel_id: Id
    """The channel."""
    user_id: Id
    """The follower."""


class StreamKeyRotated(WireModel):
    """The channel's stream key changed; a live publish with the old key must be dropped."""

    channel_id: Id
    """The channel whose key was rotated."""
    rotated_at: UtcDateTime
    """When the new key took effect."""


class ChannelFilters(WireModel):
    """The channel's chat filters after a change (``channel.filters_updated``)."""

    channel_id: Id
    """The channel."""
    banned_words: list[str]
    """Words refused in this channel's chat."""
    profanity_filter: bool
    """Whether the built-in profanity filter applies."""
    slow_mode_seconds: NonNegativeInt
    """Minimum seconds between two messages of one user; 0 turns slow mode off."""
    followers_only: bool
    """Whether only followers may send messages."""
    subscribers_only: bool = False
    """Whether only subscribers (an ACTIVE subscription, or a CANCELLED one before its renewal
    date) may send messages; absent from publishers older than subscriptions (false)."""


class ChannelModerator(WireModel):
    """A user gains or loses moderator powers (``channel.moderator_added``, ``channel.moderator_removed``)."""

    channel_id: Id
    """The channel."""
    user_id: Id
    """The moderator."""


class ChannelBan(WireModel):
    """A user is banned or timed out from the channel's chat (``channel.user_banned``)."""

    channel_id: Id
    """The channel."""
    user_id: Id
    """The banned user."""
    until: UtcDateTime | None
    """End of a timeout; null for a permanent ban."""
    reason: str | None
    """Why, as given by the moderator, or null."""


class ChannelUnban(WireModel):
    """A ban or timeout is lifted before it ran out (``channel.user_unbanned``)."""

    channel_id: Id
    """The channel."""
    user_id: Id
    """The user who may chat again."""


class DestinationsUpdated(WireModel):
    """A channel's simulcast destinations were added, changed or removed
    (``channel.destinations_updated``). Carries no URL and no key: the ingest node holding the
    channel's live session asks ``channels.simulcast.destinations`` again."""

    channel_id: Id
    """The channel whose destinations changed."""
    at: UtcDateTime
    """When the change was committed."""
