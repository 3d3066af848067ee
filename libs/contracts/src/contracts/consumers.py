"""Who receives which events through a durable JetStream consumer: the AsyncAPI document's
`receive` operations.

A durable consumer is a contract of its own: its name is state on the NATS server (its position in
the stream) and its event types are what the consuming service promises to act on. Renaming one
starts it over from its deliver policy; dropping an event type stops that effect. The services
build their consumers from their own tuples; `tests/contracts/test_consumers.py` fails when a
service's consumers and this table differ, so the document cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import subjects as s
from contracts.catalog import EventType as E
from contracts.subjects import CHAT_STREAM, EVENTS_STREAM, StreamSpec


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    name: str
    """The durable consumer's name on the stream."""
    service: str
    """The catalog's service name of the process that runs it."""
    events: tuple[str, ...]
    """Event types it receives (its filter subjects)."""
    description: str
    stream: StreamSpec = EVENTS_STREAM


CONSUMERS: tuple[ConsumerSpec, ...] = (
    ConsumerSpec("channels-user-profiles", "channels", (s.USER_REGISTERED, s.USER_UPDATED),
                 "Keeps the owner profiles shown on channel pages current."),
    ConsumerSpec("channels-stream-state", "channels", (s.STREAM_STARTED, s.STREAM_ENDED, s.STREAM_ARCHIVED),
                 "Keeps each channel's live state (directory, channel page) current."),
    ConsumerSpec("channels-simulcast-state", "channels", (s.MEDIA_SIMULCAST_STATE_CHANGED,),
                 "Keeps each simulcast destination's state (idle, connecting, live, failed) for the dashboard."),
    ConsumerSpec("channels-provider-control", "channels", (s.STREAM_END_REQUESTED, s.STREAM_CREATED),
                 "Ends a hosted channel's broadcast at its provider (Mux complete, Cloudflare input "
                 "disabled) and enables a disabled Cloudflare input again at the next Go live."),
    ConsumerSpec("streams-channels", "streams", (s.CHANNEL_CREATED, s.CHANNEL_UPDATED),
                 "The channel projection streams checks go-live requests against."),
    ConsumerSpec("streams-media", "streams",
                 (s.MEDIA_INGEST_CONNECTED, s.MEDIA_INGEST_DISCONNECTED, s.MEDIA_INGEST_ERRORED,
                  s.MEDIA_RECORDING_READY, s.MEDIA_THUMBNAIL_UPDATED, s.MEDIA_VOD_JOINED),
                 "Drives the stream lifecycle (LIVE, reconnect window, ENDED, ARCHIVED with the VOD)."),
    ConsumerSpec("streams-moderators", "streams", (s.CHANNEL_MODERATOR_ADDED, s.CHANNEL_MODERATOR_REMOVED),
                 "Who may delete a channel's clips besides their creator and the owner."),
    ConsumerSpec("chat-replicas", "chat",
                 (s.CHANNEL_CREATED, s.CHANNEL_UPDATED, s.CHANNEL_FILTERS_UPDATED,
                  s.CHANNEL_MODERATOR_ADDED, s.CHANNEL_MODERATOR_REMOVED,
                  s.CHANNEL_USER_BANNED, s.CHANNEL_USER_UNBANNED,
                  s.CHANNEL_FOLLOWED, s.CHANNEL_UNFOLLOWED,
                  s.SUBSCRIPTION_CREATED, s.SUBSCRIPTION_CHANGED, s.SUBSCRIPTION_CANCELLED,
                  s.SUBSCRIPTION_EXPIRED,
                  s.USER_REGISTERED, s.USER_UPDATED, s.USER_BLOCKED, s.USER_UNBLOCKED,
                  s.STREAM_CREATED, s.STREAM_STARTED, s.STREAM_STATUS_CHANGED, s.STREAM_ENDED,
                  s.STREAM_ARCHIVED),
                 "The chat service's replicas of moderation state, subscribers, profiles and streams "
                 "(and the edges' KV snapshots built from them)."),
    ConsumerSpec("chat-persister", "chat", (E.CHAT_MESSAGE, E.CHAT_DELETED),
                 "Copies the CHAT stream into PostgreSQL (history beyond the stream's age, reports, "
                 "VOD chat replay).", stream=CHAT_STREAM),
    ConsumerSpec("media-gateway-ingest-revocations", "media-gateway",
                 (s.CHANNEL_STREAM_KEY_ROTATED, s.STREAM_END_REQUESTED),
                 "Drops the live publish of a rotated key or an ended stream."),
    ConsumerSpec("media-gateway-vod-joins", "media-gateway", (s.STREAM_VOD_REQUESTED,),
                 "Joins a reconnected stream's recordings into one VOD."),
)
