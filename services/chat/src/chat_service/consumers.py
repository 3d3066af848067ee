"""The service's durable JetStream consumers (inbox-backed: every event takes effect once)."""

from __future__ import annotations

from servicekit.inbox import ConsumerWorker

from chat_service.config import Settings
from chat_service.moderation.service import REPLICA_EVENTS
from chat_service.moderation.snapshots import ReplicaHandler

REPLICAS_CONSUMER = "chat-replicas"


def consumers(settings: Settings, replicas: ReplicaHandler | None = None) -> list[ConsumerWorker]:
    # one consumer for every replica: events of one kind stay in order, and the cache is kept
    # current by core NATS anyway (see moderation/service.py); the handler also puts the edges'
    # KV snapshots (moderation/snapshots.py) once its `kv` is set
    return [ConsumerWorker(REPLICAS_CONSUMER, REPLICA_EVENTS, replicas or ReplicaHandler())]
