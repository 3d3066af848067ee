"""Payload models, one module per publishing service."""

from contracts.events.channels import (
    Channel,
    ChannelBan,
    ChannelFilters,
    ChannelFollow,
    ChannelModerator,
    ChannelUnban,
    StreamKeyRotated,
)
from contracts.events.chat import ChatMessage, ChatMessageDeleted, ChatPresence, ChatReport, ChatUser
from contracts.events.media import (
    IngestConnected,
    IngestDisconnected,
    IngestErrored,
    MediaProvider,
    RecordingReady,
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
    "IngestConnected",
    "IngestDisconnected",
    "IngestErrored",
    "MediaProvider",
    "RecordingReady",
    "Stream",
    "StreamEndRequested",
    "StreamKeyRotated",
    "StreamStatus",
    "StreamStatusChanged",
    "StreamViewers",
    "StreamVodRequested",
    "ThumbnailUpdated",
    "UserBlock",
    "UserProfile",
    "VodJoined",
]
