"""The service's durable JetStream consumers (inbox-backed, so every event takes effect once)."""

from __future__ import annotations

from servicekit.inbox import ConsumerWorker

from channels_service.live.service import STREAM_EVENTS, handle_stream_event
from channels_service.config import Settings
from channels_service.profiles.service import USER_EVENTS, handle_user_event
from channels_service.simulcast.service import STATE_EVENTS, handle_state_event
from channels_service.providers.service import CONTROL_EVENTS, control_handler



def consumers(settings: Settings | None = None) -> list[ConsumerWorker]:
    settings = settings or Settings()
    return [
        ConsumerWorker("channels-user-profiles", USER_EVENTS, handle_user_event),
        ConsumerWorker("channels-stream-state", STREAM_EVENTS, handle_stream_event),
        ConsumerWorker("channels-simulcast-state", STATE_EVENTS, handle_state_event),
        # End -> the hosted provider's complete/disable; Go live -> a disabled input enabled again
        ConsumerWorker("channels-provider-control", CONTROL_EVENTS, control_handler(settings)),
    ]
