"""The event catalog: the one registry of every event the platform publishes.

Each entry says which payload model an event carries, at which schema version, who publishes it,
on which subject, and whether JetStream stores it. The envelope, the subjects, the AsyncAPI
document and its breaking-change guard are all derived from here.
"""

import builtins
import re
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from contracts import subjects as s
from contracts.base import WireModel
from contracts.errors import UnknownEventType
from contracts.events import channels, chat, clips, media, streams, subscriptions, users
from contracts.subjects import CHAT_STREAM, EVENTS_STREAM, VIEWERS_STREAM, StreamSpec, is_valid_token

DATASCHEMA_PREFIX = "urn:streamplatform:event:"

_PARAMETER = re.compile(r"\{(\w+)\}")


class EventType(StrEnum):
    """Every event type; the value is what ``Envelope.type`` carries."""

    USER_REGISTERED = "user.registered"
    USER_UPDATED = "user.updated"
    USER_BLOCKED = "user.blocked"
    USER_UNBLOCKED = "user.unblocked"
    CHANNEL_CREATED = "channel.created"
    CHANNEL_UPDATED = "channel.updated"
    CHANNEL_FOLLOWED = "channel.followed"
    CHANNEL_UNFOLLOWED = "channel.unfollowed"
    CHANNEL_STREAM_KEY_ROTATED = "channel.stream_key_rotated"
    CHANNEL_FILTERS_UPDATED = "channel.filters_updated"
    CHANNEL_MODERATOR_ADDED = "channel.moderator_added"
    CHANNEL_MODERATOR_REMOVED = "channel.moderator_removed"
    CHANNEL_USER_BANNED = "channel.user_banned"
    CHANNEL_USER_UNBANNED = "channel.user_unbanned"
    CHANNEL_DESTINATIONS_UPDATED = "channel.destinations_updated"
    MEDIA_INGEST_CONNECTED = "media.ingest.connected"
    MEDIA_INGEST_DISCONNECTED = "media.ingest.disconnected"
    MEDIA_INGEST_ERRORED = "media.ingest.errored"
    MEDIA_RECORDING_READY = "media.recording.ready"
    MEDIA_THUMBNAIL_UPDATED = "media.thumbnail.updated"
    MEDIA_VOD_JOINED = "media.vod.joined"
    MEDIA_SIMULCAST_STATE_CHANGED = "media.simulcast.state_changed"
    STREAM_CREATED = "stream.created"
    STREAM_STARTED = "stream.started"
    STREAM_STATUS_CHANGED = "stream.status_changed"
    STREAM_ENDED = "stream.ended"
    STREAM_ARCHIVED = "stream.archived"
    STREAM_VIEWERS = "stream.viewers"
    STREAM_END_REQUESTED = "stream.end_requested"
    STREAM_VOD_REQUESTED = "stream.vod_requested"
    CLIP_CREATED = "clip.created"
    CLIP_DELETED = "clip.deleted"
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_CHANGED = "subscription.changed"
    SUBSCRIPTION_CANCELLED = "subscription.cancelled"
    SUBSCRIPTION_EXPIRED = "subscription.expired"
    CHAT_MESSAGE = "chat.message"
    CHAT_DELETED = "chat.deleted"
    CHAT_REPORT_CREATED = "chat.report.created"
    CHAT_PRESENCE = "chat.presence"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """Everything the platform knows about one event type."""

    type: str
    model: builtins.type[WireModel]  # `type` is the field above inside this class body
    """The payload model; ``Envelope.data`` is exactly this class."""
    version: int
    """Schema version of the payload; bump it for a change that breaks a consumer or publisher."""
    publisher: str
    """The service that publishes it (also the envelope's ``source``)."""
    subject: str
    """The NATS subject, or a template with ``{channelId}`` for per-room subjects."""
    description: str
    stream: StreamSpec | None
    """The JetStream stream that stores it; None for core NATS (at most once, not replayed)."""

    @property
    def dataschema(self) -> str:
        """The envelope's ``dataschema``: a URN naming the event and its schema version."""
        return f"{DATASCHEMA_PREFIX}{self.type}:v{self.version}"

    @property
    def parameters(self) -> tuple[str, ...]:
        """Names of the template tokens in ``subject`` (empty for a fixed subject)."""
        return tuple(_PARAMETER.findall(self.subject))

    @property
    def wildcard_subject(self) -> str:
        """The subject with every template token replaced by ``*``, to subscribe to all of them."""
        return _PARAMETER.sub("*", self.subject)

    def subject_for(self, **params: str) -> str:
        """The concrete subject; template tokens must be given, and only those."""
        expected = set(self.parameters)
        if set(params) != expected:
            wanted = ", ".join(sorted(expected)) or "no parameters"
            raise TypeError(f"subject of {self.type!r} ({self.subject}) takes {wanted}; got {sorted(params)}")
        for name, value in params.items():
            if not isinstance(value, str) or not is_valid_token(value):
                raise ValueError(
                    f"{name}={value!r} cannot be a NATS subject token (empty, or contains '.', '*', '>' "
                    "or whitespace)"
                )
        return self.subject.format(**params)


def _entry(
    event_type: EventType,
    model: type[WireModel],
    publisher: str,
    subject: str,
    description: str,
    stream: StreamSpec | None = EVENTS_STREAM,
    version: int = 1,
) -> EventSpec:
    return EventSpec(event_type.value, model, version, publisher, subject, description, stream)


E = EventType

_ENTRIES = (
    _entry(E.USER_REGISTERED, users.UserProfile, "auth", s.USER_REGISTERED, "A user account was created."),
    _entry(E.USER_UPDATED, users.UserProfile, "auth", s.USER_UPDATED, "A user's public profile changed."),
    _entry(E.USER_BLOCKED, users.UserBlock, "auth", s.USER_BLOCKED, "A user blocked (ignores) another."),
    _entry(E.USER_UNBLOCKED, users.UserBlock, "auth", s.USER_UNBLOCKED, "A user lifted a block."),
    _entry(E.CHANNEL_CREATED, channels.Channel, "channels", s.CHANNEL_CREATED, "A channel was created."),
    _entry(
        E.CHANNEL_UPDATED,
        channels.Channel,
        "channels",
        s.CHANNEL_UPDATED,
        "A channel's public fields changed.",
    ),
    _entry(
        E.CHANNEL_FOLLOWED,
        channels.ChannelFollow,
        "channels",
        s.CHANNEL_FOLLOWED,
        "A user followed a channel.",
    ),
    _entry(
        E.CHANNEL_UNFOLLOWED,
        channels.ChannelFollow,
        "channels",
        s.CHANNEL_UNFOLLOWED,
        "A user unfollowed a channel.",
    ),
    _entry(
        E.CHANNEL_STREAM_KEY_ROTATED,
        channels.StreamKeyRotated,
        "channels",
        s.CHANNEL_STREAM_KEY_ROTATED,
        "A channel's stream key was rotated; a live publish with the old key must be dropped.",
    ),
    _entry(
        E.CHANNEL_FILTERS_UPDATED,
        channels.ChannelFilters,
        "channels",
        s.CHANNEL_FILTERS_UPDATED,
        "A channel's chat filters (banned words, profanity, slow mode, followers-only) changed.",
    ),
    _entry(
        E.CHANNEL_MODERATOR_ADDED,
        channels.ChannelModerator,
        "channels",
        s.CHANNEL_MODERATOR_ADDED,
        "A user became a moderator of a channel.",
    ),
    _entry(
        E.CHANNEL_MODERATOR_REMOVED,
        channels.ChannelModerator,
        "channels",
        s.CHANNEL_MODERATOR_REMOVED,
        "A user stopped being a moderator of a channel.",
    ),
    _entry(
        E.CHANNEL_USER_BANNED,
        channels.ChannelBan,
        "channels",
        s.CHANNEL_USER_BANNED,
        "A user was banned or timed out from a channel's chat; chat removes them at once.",
    ),
    _entry(
        E.CHANNEL_USER_UNBANNED,
        channels.ChannelUnban,
        "channels",
        s.CHANNEL_USER_UNBANNED,
        "A ban or timeout was lifted.",
    ),
    _entry(
        E.CHANNEL_DESTINATIONS_UPDATED,
        channels.DestinationsUpdated,
        "channels",
        s.CHANNEL_DESTINATIONS_UPDATED,
        "A channel's simulcast destinations changed; the ingest node holding its live session "
        "forwards to the new set.",
    ),
    _entry(
        E.MEDIA_INGEST_CONNECTED,
        media.IngestConnected,
        "media-gateway",
        s.MEDIA_INGEST_CONNECTED,
        "An encoder started publishing to a channel.",
    ),
    _entry(
        E.MEDIA_INGEST_DISCONNECTED,
        media.IngestDisconnected,
        "media-gateway",
        s.MEDIA_INGEST_DISCONNECTED,
        "An encoder stopped publishing.",
    ),
    _entry(
        E.MEDIA_INGEST_ERRORED,
        media.IngestErrored,
        "media-gateway",
        s.MEDIA_INGEST_ERRORED,
        "The provider reported a failed ingest session.",
    ),
    _entry(
        E.MEDIA_RECORDING_READY,
        media.RecordingReady,
        "media-gateway",
        s.MEDIA_RECORDING_READY,
        "The recording of an ingest session is ready as a VOD.",
    ),
    _entry(
        E.MEDIA_THUMBNAIL_UPDATED,
        media.ThumbnailUpdated,
        "media-gateway",
        s.MEDIA_THUMBNAIL_UPDATED,
        "A new thumbnail of a live broadcast is available.",
    ),
    _entry(
        E.MEDIA_VOD_JOINED,
        media.VodJoined,
        "media-gateway",
        s.MEDIA_VOD_JOINED,
        "The recorded parts of a stream were joined into one VOD, as stream.vod_requested asked.",
    ),
    _entry(
        E.MEDIA_SIMULCAST_STATE_CHANGED,
        media.SimulcastStateChanged,
        "media-gateway",
        s.MEDIA_SIMULCAST_STATE_CHANGED,
        "A simulcast forwarder (the live source copied to a creator's RTMP destination) changed state.",
    ),
    _entry(
        E.STREAM_CREATED,
        streams.Stream,
        "streams",
        s.STREAM_CREATED,
        "A stream session was prepared (OFFLINE).",
    ),
    _entry(E.STREAM_STARTED, streams.Stream, "streams", s.STREAM_STARTED, "A stream went LIVE."),
    _entry(
        E.STREAM_STATUS_CHANGED,
        streams.StreamStatusChanged,
        "streams",
        s.STREAM_STATUS_CHANGED,
        "A stream moved to a new status; sent for every transition.",
    ),
    _entry(
        E.STREAM_ENDED, streams.Stream, "streams", s.STREAM_ENDED, "A stream stopped being LIVE (ENDING)."
    ),
    _entry(
        E.STREAM_ARCHIVED,
        streams.Stream,
        "streams",
        s.STREAM_ARCHIVED,
        "A stream's recording is listed (ARCHIVED).",
    ),
    _entry(
        E.STREAM_VIEWERS,
        streams.StreamViewers,
        "streams",
        s.STREAM_VIEWERS_TEMPLATE,
        "Viewer count of a live stream, at most once a second per stream and only on change. Kept "
        "as the latest per stream (VIEWERS), outside EVENTS and the outbox.",
        stream=VIEWERS_STREAM,
    ),
    _entry(
        E.STREAM_END_REQUESTED,
        streams.StreamEndRequested,
        "streams",
        s.STREAM_END_REQUESTED,
        "The creator ended a stream; the media gateway drops its ingest.",
    ),
    _entry(
        E.STREAM_VOD_REQUESTED,
        streams.StreamVodRequested,
        "streams",
        s.STREAM_VOD_REQUESTED,
        "A stream that ran over several encoder connections ended; the media gateway joins their "
        "recordings, in order, into one VOD.",
    ),
    _entry(
        E.CLIP_CREATED,
        clips.Clip,
        "streams",
        s.CLIP_CREATED,
        "A clip was cut and stored and can be played (sent once it is ready, not when it was asked for).",
    ),
    _entry(E.CLIP_DELETED, clips.ClipDeleted, "streams", s.CLIP_DELETED, "A clip was deleted."),
    _entry(
        E.SUBSCRIPTION_CREATED,
        subscriptions.Subscription,
        "channels",
        s.SUBSCRIPTION_CREATED,
        "A user subscribed to a channel (first time, or again after the last one expired); ACTIVE "
        "for 30 days.",
    ),
    _entry(
        E.SUBSCRIPTION_CHANGED,
        subscriptions.SubscriptionChanged,
        "channels",
        s.SUBSCRIPTION_CHANGED,
        "A subscription changed tier, was resumed before its renewal date, or renewed for another period.",
    ),
    _entry(
        E.SUBSCRIPTION_CANCELLED,
        subscriptions.Subscription,
        "channels",
        s.SUBSCRIPTION_CANCELLED,
        "A subscriber cancelled; the subscription stays valid until its renewal date, then expires.",
    ),
    _entry(
        E.SUBSCRIPTION_EXPIRED,
        subscriptions.Subscription,
        "channels",
        s.SUBSCRIPTION_EXPIRED,
        "A subscription ended: cancelled and past its renewal date, or its renewal was refused by the "
        "payment provider.",
    ),
    _entry(
        E.CHAT_MESSAGE,
        chat.ChatMessage,
        "chat",
        s.CHAT_MESSAGE_TEMPLATE,
        "A chat message was accepted into a channel's room.",
        stream=CHAT_STREAM,
        # v2: seq is no longer required on the wire (it is the stream sequence, known only
        # after the publish; readers take it from the JetStream metadata)
        version=2,
    ),
    _entry(
        E.CHAT_DELETED,
        chat.ChatMessageDeleted,
        "chat",
        s.CHAT_DELETED_TEMPLATE,
        "A chat message was deleted and must disappear from every viewer.",
        stream=CHAT_STREAM,
        version=2,  # as chat.message: seq comes from the JetStream metadata
    ),
    _entry(
        E.CHAT_REPORT_CREATED,
        chat.ChatReport,
        "chat",
        s.CHAT_REPORT_CREATED,
        "A viewer reported a message or a user.",
    ),
    _entry(
        E.CHAT_PRESENCE,
        chat.ChatPresence,
        "chat",
        s.CHAT_PRESENCE_TEMPLATE,
        "A chat edge's periodic count of one room's connections (core NATS, published by every edge).",
        # A snapshot is superseded by the next one a moment later: storing or replaying it
        # would only deliver stale counts.
        stream=None,
    ),
)

CATALOG: MappingProxyType[str, EventSpec] = MappingProxyType({entry.type: entry for entry in _ENTRIES})

if len(CATALOG) != len(_ENTRIES) or set(CATALOG) != {member.value for member in EventType}:
    raise RuntimeError("contracts.catalog: every EventType needs exactly one catalog entry")


def spec(event_type: str) -> EventSpec:
    """The catalog entry of an event type; ``UnknownEventType`` if there is none."""
    try:
        return CATALOG[event_type]
    except (KeyError, TypeError):
        raise UnknownEventType(event_type) from None


def subject_for(event_type: str, **params: str) -> str:
    """The subject to publish an event on, e.g. ``subject_for("chat.message", channelId="c1")``."""
    return spec(event_type).subject_for(**params)
