"""The service's durable JetStream consumers (inbox-backed: every event takes effect once)."""

from __future__ import annotations

from servicekit.inbox import ConsumerWorker

from streams_service.channels.service import CHANNEL_EVENTS, handle_channel_event
from streams_service.clips.service import MODERATOR_EVENTS, handle_moderator_event
from streams_service.config import Settings
from streams_service.ingest.service import MEDIA_EVENTS, make_media_handler


CHANNELS_CONSUMER = "streams-channels"
MEDIA_CONSUMER = "streams-media"
MODERATORS_CONSUMER = "streams-moderators"


def consumers(settings: Settings) -> list[ConsumerWorker]:
    return [
        ConsumerWorker(CHANNELS_CONSUMER, CHANNEL_EVENTS, handle_channel_event),
        ConsumerWorker(MEDIA_CONSUMER, MEDIA_EVENTS, make_media_handler(settings)),
        # who may delete a channel's clips besides its owner
        ConsumerWorker(MODERATORS_CONSUMER, MODERATOR_EVENTS, handle_moderator_event),
    ]
