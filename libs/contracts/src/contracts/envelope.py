"""The CloudEvents 1.0 envelope that wraps every event on NATS."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from contracts.base import UtcDateTime, WireModel
from contracts.catalog import DATASCHEMA_PREFIX, spec
from contracts.errors import UnsupportedEventVersion

DataT = TypeVar("DataT")
PayloadT = TypeVar("PayloadT", bound=WireModel)

MSG_ID_HEADER = "Nats-Msg-Id"


def _canonical_uuid(value: str) -> str:
    # Consumers record processed ids in an inbox table; one spelling per id keeps that exact.
    return str(uuid.UUID(value))


EventId = Annotated[str, AfterValidator(_canonical_uuid), Field(json_schema_extra={"format": "uuid"})]


class Envelope(WireModel, Generic[DataT]):
    """A CloudEvents 1.0 event in structured JSON mode, with a typed ``data``."""

    id: EventId
    """Unique per event; also the ``Nats-Msg-Id`` header, so JetStream drops a republished duplicate."""
    type: str
    """The event type, e.g. ``user.registered``."""
    source: str
    """The publishing service, e.g. ``auth``."""
    time: UtcDateTime
    """When the event happened (UTC)."""
    specversion: Literal["1.0"] = "1.0"
    """CloudEvents version."""
    dataschema: Annotated[str, Field(pattern=rf"^{DATASCHEMA_PREFIX}[a-z0-9_.]+:v[0-9]+$")]
    """URN of the payload schema and its version, e.g. ``urn:streamplatform:event:user.registered:v1``."""
    datacontenttype: Literal["application/json"] = "application/json"
    """Media type of ``data``."""
    subject: str | None = None
    """What the event is about within the source, e.g. the aggregate's id."""
    data: DataT
    """The payload."""

    def to_json_bytes(self) -> bytes:
        """The wire form; an absent ``subject`` is omitted rather than sent as null."""
        exclude = {"subject"} if self.subject is None else None
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude=exclude))

    def nats_headers(self) -> dict[str, str]:
        """Headers to publish with (trace context is added by the tracing middleware, not here)."""
        return {MSG_ID_HEADER: self.id}


def make_event(
    event_type: str,
    data: PayloadT,
    *,
    source: str,
    subject: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
) -> Envelope[PayloadT]:
    """Wrap a payload in an envelope stamped with the catalog's version for ``event_type``.

    ``id`` defaults to a random UUID. Pass a deterministic one (e.g. a uuid5 of the sender and a
    client nonce) when retries of the same action must collapse into one event.
    """
    entry = spec(event_type)
    if type(data) is not entry.model:
        raise TypeError(f"{entry.type!r} carries {entry.model.__name__}, got {type(data).__name__}")
    return Envelope[entry.model](  # type: ignore[name-defined]
        id=id if id is not None else str(uuid.uuid4()),
        type=entry.type,
        source=source,
        time=time if time is not None else datetime.now(UTC),
        dataschema=entry.dataschema,
        subject=subject,
        data=data,
    )


_JSON_OBJECT = TypeAdapter(dict[str, Any])


def parse_event(raw: bytes | str) -> Envelope[Any]:
    """Parse an event from the wire, with ``data`` as the payload model its ``type`` names.

    Raises ``pydantic.ValidationError`` for malformed JSON or an invalid envelope or payload,
    ``UnknownEventType`` for a type not in the catalog, and ``UnsupportedEventVersion`` when the
    ``dataschema`` names a schema version this build does not read.
    """
    document = _JSON_OBJECT.validate_json(raw)
    event_type = document.get("type")
    if not isinstance(event_type, str):
        error_type = "missing" if event_type is None else "string_type"
        raise ValidationError.from_exception_data(
            Envelope.__name__, [{"type": error_type, "loc": ("type",), "input": event_type}]
        )
    entry = spec(event_type)
    dataschema = document.get("dataschema")
    if isinstance(dataschema, str) and dataschema != entry.dataschema:
        raise UnsupportedEventVersion(entry.type, dataschema, entry.dataschema)
    return Envelope[entry.model].model_validate(document)  # type: ignore[name-defined]
