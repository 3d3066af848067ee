"""The service's durable JetStream consumers (inbox-backed, so every event takes effect once)."""

from __future__ import annotations

from servicekit.inbox import ConsumerWorker

from channels_service.live.service import STREAM_EVENTS, handle_stream_event
from channels_service.profiles.service import USER_EVENTS, handle_user_event
from channels_service.simulcast.service import STATE_EVENTS, handle_state_event



def consumers() -> list[ConsumerWorker]:
    return [
        ConsumerWorker("channels-user-profiles", USER_EVENTS, handle_user_event),
        ConsumerWorker("channels-stream-state", STREAM_EVENTS, handle_stream_event),
        ConsumerWorker("channels-simulcast-state", STATE_EVENTS, handle_state_event),
    ]
