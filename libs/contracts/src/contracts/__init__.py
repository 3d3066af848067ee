"""The platform's event contracts, shared by every publisher and subscriber.

``make_event`` / ``parse_event`` wrap and unwrap payloads in the CloudEvents envelope,
``subject_for`` names the NATS subject, and ``catalog.CATALOG`` is the registry behind all three.
"""

from contracts.catalog import CATALOG, EventSpec, EventType, spec, subject_for
from contracts.envelope import Envelope, make_event, parse_event
from contracts.errors import ContractError, UnknownEventType, UnsupportedEventVersion
from contracts.subjects import CHAT_STREAM, EVENTS_STREAM, STREAMS, StreamSpec

__all__ = [
    "CATALOG",
    "CHAT_STREAM",
    "EVENTS_STREAM",
    "STREAMS",
    "ContractError",
    "Envelope",
    "EventSpec",
    "EventType",
    "StreamSpec",
    "UnknownEventType",
    "UnsupportedEventVersion",
    "make_event",
    "parse_event",
    "spec",
    "subject_for",
]
