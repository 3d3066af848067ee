"""Request/reply messages (core NATS, not events): a caller waits for one answer."""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import Field, SecretStr, field_serializer, model_validator

from contracts.base import Id, UtcDateTime, WireModel
from contracts.events.channels import Channel
from contracts.subjects import (
    CHANNELS_GET,
    CHANNELS_INGEST_AUTHORIZE,
    CHANNELS_PROVIDER_LOOKUP,
    CHANNELS_SIMULCAST_DESTINATIONS,
)


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


class ChannelGetRequest(WireModel):
    """A service whose channel replica has no row for an id asks the owner before saying 404."""

    channel_id: Id
    """The channel asked about."""


class ChannelGetReply(WireModel):
    """The channels service's answer: the channel as ``channel.created``/``channel.updated`` carry
    it, or not found."""

    found: bool
    """Whether the channel exists."""
    channel: Channel | None = None
    """The channel's public fields; present exactly when found."""
    updated_at: UtcDateTime | None = None
    """When the channel last changed; a replica stores it as the row's version so that an older
    event arriving later changes nothing and a newer one still applies."""

    @model_validator(mode="after")
    def _channel_exactly_when_found(self) -> "ChannelGetReply":
        if self.found != (self.channel is not None and self.updated_at is not None):
            raise ValueError("channel and updatedAt must be given when found and only then")
        return self


class SimulcastDestinationsRequest(WireModel):
    """The ingest node holding a channel's live session asks where to forward it."""

    channel_id: Id
    """The live channel."""


class SimulcastTarget(WireModel):
    """One enabled destination, with its key: only this reply carries it."""

    id: Id
    """The destination's id (state reports name it)."""
    url: SecretStr
    """The full RTMP(S) URL to publish to: the creator's server URL and stream key joined by `/`.
    Masked in ``repr`` and logs; only the wire form carries it."""
    key_suffix: str
    """The key's last characters, to mask it in anything reported back."""

    @field_serializer("url", when_used="json")
    def _reveal_for_the_wire(self, url: SecretStr) -> str:
        return url.get_secret_value()


class SimulcastDestinationsReply(WireModel):
    """The channel's enabled destinations (none when it has none or does not exist)."""

    destinations: list[SimulcastTarget]
    """Where to forward the live source, each without re-encoding."""


class ProviderLookupRequest(WireModel):
    """A hosted provider's webhook names its stream but not our channel (Cloudflare's live-input
    notifications carry no ``meta``): the media gateway asks channels whose stream it is."""

    provider: str = Field(min_length=1, max_length=20)
    """``mux`` or ``cloudflare``."""
    stream_id: str = Field(min_length=1, max_length=255)
    """The provider's live stream / live input id."""


class ProviderLookupReply(WireModel):
    """The channel whose current provider stream that is, or not found."""

    found: bool
    """Whether a channel currently uses that provider stream."""
    channel_id: Id | None = None
    """The channel; present exactly when found."""

    @model_validator(mode="after")
    def _channel_exactly_when_found(self) -> "ProviderLookupReply":
        if self.found != (self.channel_id is not None):
            raise ValueError("channelId must be given when found and only then")
        return self


RequestT = TypeVar("RequestT", bound=WireModel)
ReplyT = TypeVar("ReplyT", bound=WireModel)


@dataclass(frozen=True, slots=True)
class RequestSpec(Generic[RequestT, ReplyT]):
    """A request/reply subject: who asks, who answers, and the two message models."""

    subject: str
    request: type[RequestT]
    reply: type[ReplyT]
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

CHANNEL_GET = RequestSpec(
    subject=CHANNELS_GET,
    request=ChannelGetRequest,
    reply=ChannelGetReply,
    requester="streams, chat",
    responder="channels",
    description=("Read-your-writes for channel replicas: a service that has not yet received "
                 "`channel.created` for an id asks channels before answering 404."),
)

SIMULCAST_DESTINATIONS = RequestSpec(
    subject=CHANNELS_SIMULCAST_DESTINATIONS,
    request=SimulcastDestinationsRequest,
    reply=SimulcastDestinationsReply,
    requester="media-gateway",
    responder="channels",
    description=("The ingest node holding a channel's live session asks channels for its enabled simulcast "
                 "destinations (URL and key, decrypted) at go-live and after channel.destinations_updated."),
)

PROVIDER_LOOKUP = RequestSpec(
    subject=CHANNELS_PROVIDER_LOOKUP,
    request=ProviderLookupRequest,
    reply=ProviderLookupReply,
    requester="media-gateway",
    responder="channels",
    description=("A provider webhook that names a live input but no channel (Cloudflare live-input "
                 "notifications): the media gateway asks channels which channel uses it."),
)

REQUESTS: tuple[RequestSpec[Any, Any], ...] = (INGEST_AUTHORIZE, CHANNEL_GET, SIMULCAST_DESTINATIONS, PROVIDER_LOOKUP)
