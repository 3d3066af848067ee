"""The edge's one door into the chat core (settings, send pipeline, room lookup, history).

The core owns these names (chat_service.messages.service, chat_service.config); the edge imports
them only here, so a rename there is one edit here.
"""

from __future__ import annotations

from chat_service.config import Settings as CoreSettings
from chat_service.messages.service import ChatRejected, ChatService, ChatUnavailable, decode_room_event


def build_chat_service(runtime, settings) -> ChatService:
    """The core's send/history/lookup service over this process's connections: NATS and Valkey
    only, no database (chat_service.edge.natsstate)."""
    from chat_service.edge.natsstate import EdgeChat

    return EdgeChat(runtime, settings)


__all__ = ["ChatRejected", "ChatUnavailable", "CoreSettings", "build_chat_service", "decode_room_event"]
