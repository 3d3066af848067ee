"""The service's durable JetStream consumers (inbox-backed: every event takes effect once)."""

from __future__ import annotations

from servicekit.inbox import ConsumerWorker

from chat_service.config import Settings
from chat_service.moderation.service import REPLICA_EVENTS, handle_event

REPLICAS_CONSUMER = "chat-replicas"


def consumers(settings: Settings) -> list[ConsumerWorker]:
    # one consumer for every replica: events of one kind stay in order, and the cache is kept
    # current by core NATS anyway (see moderation/service.py)
    return [ConsumerWorker(REPLICAS_CONSUMER, REPLICA_EVENTS, handle_event)]
