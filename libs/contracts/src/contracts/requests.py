"""Request/reply messages (core NATS, not events): a caller waits for one answer."""

from dataclasses import dataclass

from pydantic import Field, SecretStr, field_serializer, model_validator

from contracts.base import Id, WireModel
from contracts.subjects import CHANNELS_INGEST_AUTHORIZE


class IngestAuthorizeRequest(WireModel):
    """The media gateway asks whether a stream key may publish."""

    stream_key: SecretStr = Field(min_length=1)
    """The key the encoder presented. Masked in ``repr`` and logs; only the wire form carries it."""
    client_ip: str | None = None
    """Address of the encoder, for the channels service's audit and rate limits."""

    @field_serializer("stream_key", when_used="json")
    def _reveal_for_the_wire(self, key: SecretStr) -> str:
        return key.get_secret_value()


class IngestAuthorizeReply(WireModel):
    """The channels service's answer: the channel the key belongs to, or a refusal."""

    allowed: bool
    """Whether the publish may go ahead."""
    channel_id: Id | None = None
    """The channel the key belongs to; present exactly when allowed."""
    reason: str | None = None
    """Why the publish was refused (never echoes the key)."""

    @model_validator(mode="after")
    def _channel_exactly_when_allowed(self) -> "IngestAuthorizeReply":
        if self.allowed != (self.channel_id is not None):
            raise ValueError("channelId must be given when allowed and only then")
        return self


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A request/reply subject: who asks, who answers, and the two message models."""

    subject: str
    request: type[WireModel]
    reply: type[WireModel]
    requester: str
    responder: str
    description: str
    version: int = 1
    """Schema version of the request and reply; bump it for a breaking change, as for events."""


INGEST_AUTHORIZE = RequestSpec(
    subject=CHANNELS_INGEST_AUTHORIZE,
    request=IngestAuthorizeRequest,
    reply=IngestAuthorizeReply,
    requester="media-gateway",
    responder="channels",
    description="Before accepting an RTMP publish, the media gateway asks channels who owns the stream key.",
)

REQUESTS: tuple[RequestSpec, ...] = (INGEST_AUTHORIZE,)
