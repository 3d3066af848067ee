"""Every NATS subject the platform uses, and the JetStream streams that store them.

For a domain event the subject is the event type (``user.registered``); chat subjects carry the
channel id as their last token (``chat.message.<channelId>``) so an edge subscribes only to the
rooms it has members in. Streams are plain data here; services turn them into nats-py
``StreamConfig`` objects when they create or update them.
"""

import re
from dataclasses import dataclass
from typing import Literal

# auth
USER_REGISTERED = "user.registered"
USER_UPDATED = "user.updated"
USER_BLOCKED = "user.blocked"
USER_UNBLOCKED = "user.unblocked"

# channels
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

# media-gateway
MEDIA_INGEST_CONNECTED = "media.ingest.connected"
MEDIA_INGEST_DISCONNECTED = "media.ingest.disconnected"
MEDIA_INGEST_ERRORED = "media.ingest.errored"
MEDIA_RECORDING_READY = "media.recording.ready"
MEDIA_THUMBNAIL_UPDATED = "media.thumbnail.updated"
MEDIA_VOD_JOINED = "media.vod.joined"
MEDIA_SIMULCAST_STATE_CHANGED = "media.simulcast.state_changed"

# streams
STREAM_CREATED = "stream.created"
STREAM_STARTED = "stream.started"
STREAM_STATUS_CHANGED = "stream.status_changed"
STREAM_ENDED = "stream.ended"
STREAM_ARCHIVED = "stream.archived"
# a live count, superseded a second later: stored only as the last one per stream (VIEWERS), never
# in EVENTS, the outbox or an inbox (at 10k live streams one a second would fill them)
STREAM_VIEWERS_TEMPLATE = "stream.viewers.{streamId}"
STREAM_VIEWERS_ALL = "stream.viewers.*"
STREAM_END_REQUESTED = "stream.end_requested"
STREAM_VOD_REQUESTED = "stream.vod_requested"
CLIP_CREATED = "clip.created"
CLIP_DELETED = "clip.deleted"

# channels: subscriptions (a domain of their own, outside channel.*: a subscription is the
# subscriber's as much as the channel's)
SUBSCRIPTION_CREATED = "subscription.created"
SUBSCRIPTION_CHANGED = "subscription.changed"
SUBSCRIPTION_CANCELLED = "subscription.cancelled"
SUBSCRIPTION_EXPIRED = "subscription.expired"

# chat: templates take the channel id (use ``contracts.subject_for``), *_ALL subscribe to every room.
# The templates are deliberately not valid subjects to publish to as they are: NATS would accept
# the literal ``{channelId}`` token, so they are named *_TEMPLATE to make that mistake visible.
CHAT_MESSAGE_TEMPLATE = "chat.message.{channelId}"
CHAT_MESSAGE_ALL = "chat.message.*"
CHAT_DELETED_TEMPLATE = "chat.deleted.{channelId}"
CHAT_DELETED_ALL = "chat.deleted.*"
CHAT_REPORT_CREATED = "chat.report.created"
CHAT_PRESENCE_TEMPLATE = "chat.presence.{channelId}"
CHAT_PRESENCE_ALL = "chat.presence.*"
# Ephemeral room events (typing, user joined/left, online list) between chat edges: core NATS
# only, deliberately covered by no stream; a missed one is superseded by the next, and storing
# them would put every keystroke on disk. Payloads are edge-internal, not catalog events.
CHAT_ROOM_TEMPLATE = "chat.room.{channelId}"
CHAT_ROOM_ALL = "chat.room.*"

# Request/reply, core NATS only: a stream capturing it would answer the request with a
# JetStream publish ack instead of the responder's reply.
CHANNELS_INGEST_AUTHORIZE = "channels.ingest.authorize"
CHANNELS_PROVIDER_LOOKUP = "channels.provider.lookup"
CHANNELS_GET = "channels.get"
# the media gateway asks for a live channel's simulcast destinations (their keys: never an event)
CHANNELS_SIMULCAST_DESTINATIONS = "channels.simulcast.destinations"
# the chat API answers the chat edges (which hold no database connection): chat-internal, so
# not in contracts.requests, but named here for the NATS permission table (contracts.access)
CHAT_API_HISTORY = "chat.api.history"
CHAT_API_STATE = "chat.api.state"
# drop a publisher on the ingest node that holds it (media-gateway to media-gateway, core NATS:
# outside `media.>`, which EVENTS captures); the node name is the token (INGEST_NODE_DROP_TEMPLATE)
INGEST_NODE_DROP_TEMPLATE = "ingest.node.{node}.drop"
INGEST_NODE_DROP_ALL = "ingest.node.*.drop"
# JetStream KV bucket of moderation snapshots the chat API writes and the edges read
CHAT_STATE_BUCKET = "chat-state"

_FORBIDDEN_IN_TOKEN = re.compile(r"[.*>\s]")


def is_valid_token(value: str) -> bool:
    """Whether ``value`` can stand as one subject token (no dot, wildcard or whitespace)."""
    return bool(value) and not _FORBIDDEN_IN_TOKEN.search(value)


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether a concrete ``subject`` is matched by a NATS ``pattern`` (``*`` one token, ``>`` the rest)."""
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for index, token in enumerate(pattern_tokens):
        if token == ">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if token != "*" and token != subject_tokens[index]:
            return False
    return len(pattern_tokens) == len(subject_tokens)


def subjects_overlap(a: str, b: str) -> bool:
    """Whether some concrete subject is matched by both patterns (JetStream forbids that between streams)."""
    a_tokens, b_tokens = a.split("."), b.split(".")
    for index in range(max(len(a_tokens), len(b_tokens))):
        if index >= len(a_tokens) or index >= len(b_tokens):
            return False
        x, y = a_tokens[index], b_tokens[index]
        if x == ">" or y == ">":
            return True
        if x != "*" and y != "*" and x != y:
            return False
    return True


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A JetStream stream, as data."""

    name: str
    subjects: tuple[str, ...]
    duplicate_window_seconds: int
    """How long JetStream remembers a ``Nats-Msg-Id`` to drop a republished duplicate."""
    max_age_seconds: int
    """How long a message is kept; a durable consumer down for longer misses events."""
    storage: Literal["file", "memory"] = "file"
    max_msgs_per_subject: int = -1
    """Messages kept per subject (-1: no limit); 1 keeps only the latest, a last-value store."""
    description: str = ""

    def covers(self, subject: str) -> bool:
        """Whether a concrete subject is stored in this stream."""
        return any(subject_matches(pattern, subject) for pattern in self.subjects)


_HOUR = 3600
_DAY = 24 * _HOUR

EVENTS_STREAM = StreamSpec(
    name="EVENTS",
    # stream.* one by one, not "stream.>": the viewer counts (stream.viewers.<id>) are VIEWERS'
    subjects=("user.>", "channel.>", "media.>", STREAM_CREATED, STREAM_STARTED, STREAM_STATUS_CHANGED,
              STREAM_ENDED, STREAM_ARCHIVED, STREAM_END_REQUESTED, STREAM_VOD_REQUESTED, "chat.report.>",
              "clip.>", "subscription.>"),
    # The outbox relay publishes a row, then marks it sent. A crash between the two makes it
    # publish the row again on restart, possibly after a slow restart or a NATS outage; the
    # window must outlast that, not just a network retry (the 2-minute default). Dedup ids are
    # kept in memory, and domain events are few, so an hour costs little.
    duplicate_window_seconds=_HOUR,
    # A durable consumer that is down for up to a week catches up on its own; beyond that it
    # needs a resync from the owning service's API anyway.
    max_age_seconds=7 * _DAY,
    description="Domain events, written by each service's outbox relay.",
)

CHAT_STREAM = StreamSpec(
    # One token after the prefix: a channel id never contains a dot (subject_for refuses it),
    # so a deeper subject is a bug that should fail to publish rather than be stored.
    name="CHAT",
    subjects=("chat.message.*", "chat.deleted.*"),
    # The dedup id comes from the sender's nonce; a client resends a pending message right after
    # it reconnects. At chat rates (up to thousands a second) every id in the window sits in the
    # server's memory, so the window covers a reconnect with margin, not hours.
    duplicate_window_seconds=5 * 60,
    # The persister trails by seconds and resume needs minutes; a day covers a persister outage
    # overnight. Older history is served from PostgreSQL.
    max_age_seconds=_DAY,
    description="Accepted chat messages and deletions: the durable log that makes a message 'accepted'.",
)

VIEWERS_STREAM = StreamSpec(
    name="VIEWERS",
    subjects=(STREAM_VIEWERS_ALL,),
    # a count is republished only when it changed, so a duplicate is harmless: a short window
    duplicate_window_seconds=60,
    # the latest count of each live stream, for a consumer that (re)starts (DeliverPolicy
    # LAST_PER_SUBJECT); an ended stream's last count ages out
    max_age_seconds=_DAY,
    max_msgs_per_subject=1,
    description="The latest viewer count per live stream (stream.viewers.<streamId>), one message each.",
)

STREAMS: tuple[StreamSpec, ...] = (EVENTS_STREAM, CHAT_STREAM, VIEWERS_STREAM)


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """A JetStream key-value bucket, as data (JetStream keeps it as the stream ``KV_<name>``)."""

    name: str
    history: int = 1
    """Values kept per key (1: the latest)."""
    description: str = ""

    @property
    def stream(self) -> str:
        return f"KV_{self.name}"


CHAT_STATE = BucketSpec(
    name=CHAT_STATE_BUCKET,
    description="chat moderation snapshots for the edges (written by the chat API's replica consumer)",
)

BUCKETS: tuple[BucketSpec, ...] = (CHAT_STATE,)
