"""Payload models, one module per publishing service."""

from contracts.events.channels import (
    Channel,
    ChannelBan,
    ChannelFilters,
    ChannelFollow,
    ChannelModerator,
    ChannelUnban,
    DestinationsUpdated,
    StreamKeyRotated,
)
from contracts.events.chat import ChatMessage, ChatMessageDeleted, ChatPresence, ChatReport, ChatUser
from contracts.events.media import (
    IngestConnected,
    IngestDisconnected,
    IngestErrored,
    MediaProvider,
    RecordingReady,
    SimulcastState,
    SimulcastStateChanged,
    ThumbnailUpdated,
    VodJoined,
)
from contracts.events.streams import (
    Stream,
    StreamEndRequested,
    StreamStatus,
    StreamStatusChanged,
    StreamViewers,
    StreamVodRequested,
)
from contracts.events.subscriptions import (
    Subscription,
    SubscriptionChanged,
    SubscriptionStatus,
    SubscriptionTier,
)
from contracts.events.users import UserBlock, UserProfile

__all__ = [
    "Channel",
    "ChannelBan",
    "ChannelFilters",
    "ChannelFollow",
    "ChannelModerator",
    "ChannelUnban",
    "ChatMessage",
    "ChatMessageDeleted",
    "ChatPresence",
    "ChatReport",
    "ChatUser",
    "DestinationsUpdated",
    "IngestConnected",
    "IngestDisconnected",
    "IngestErrored",
    "MediaProvider",
    "RecordingReady",
    "SimulcastState",
    "SimulcastStateChanged",
    "Stream",
    "StreamEndRequested",
    "StreamKeyRotated",
    "StreamStatus",
    "StreamStatusChanged",
    "StreamViewers",
    "StreamVodRequested",
    "Subscription",
    "SubscriptionChanged",
    "SubscriptionStatus",
    "SubscriptionTier",
    "ThumbnailUpdated",
    "UserBlock",
    "UserProfile",
    "VodJoined",
]
