"""`channels.ingest.authorize`: core NATS request/reply, answered by every replica through one
queue group. The request carries a stream key, so nothing here logs the request, its parse errors
or the key; replies and logs carry the outcome only."""

from __future__ import annotations

import logging

import orjson
from prometheus_client import Counter
from pydantic import ValidationError

from contracts.requests import INGEST_AUTHORIZE, IngestAuthorizeReply, IngestAuthorizeRequest
from servicekit.responder import MalformedRequest, Responder

from channels_service.streamkeys import service

log = logging.getLogger("channels.ingest")

AUTHORIZATIONS = Counter("ingest_authorize_total", "Answers to channels.ingest.authorize", ["outcome"])


def parse_request(data: bytes, max_bytes: int) -> IngestAuthorizeRequest:
    """The request, or MalformedRequest with a fixed reason: pydantic's messages would quote the
    input, i.e. the key."""
    if len(data) > max_bytes:
        raise MalformedRequest("malformed request")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedRequest("malformed request") from None
    if not isinstance(document, dict):
        raise MalformedRequest("malformed request")
    raw = document.get("streamKey", document.get("stream_key"))
    if raw is None or raw == "":
        raise MalformedRequest("missing stream key")
    if not isinstance(raw, str):
        raise MalformedRequest("malformed stream key")
    try:
        return IngestAuthorizeRequest.model_validate(document)
    except ValidationError:
        raise MalformedRequest("malformed request") from None


class IngestAuthorizer(Responder[IngestAuthorizeRequest, IngestAuthorizeReply]):
    # every request is answered: a refusal names what was wrong with it, or that the database failed
    __name__ = "ingest-authorizer"
    spec = INGEST_AUTHORIZE
    queue = "channels"
    what = "ingest authorization"
    logger = log
    max_request_bytes = 4096

    def decode(self, data: bytes) -> IngestAuthorizeRequest:
        return parse_request(data, self.max_request_bytes)

    def reply_to_malformed(self, problem: MalformedRequest) -> IngestAuthorizeReply:
        return service.refusal(problem.reason)

    async def handle_request(self, request: IngestAuthorizeRequest) -> IngestAuthorizeReply:
        async with self.runtime.db.session() as session:
            return await service.authorize(session, request.stream_key.get_secret_value())

    def reply_to_failure(self, exc: Exception) -> IngestAuthorizeReply:
        return service.refusal("temporarily unavailable")

    def answered(self, reply: IngestAuthorizeReply | None) -> None:
        if reply is None:  # never: every request is answered
            return
        AUTHORIZATIONS.labels("allowed" if reply.allowed else (reply.reason or "refused")).inc()
        if reply.allowed:
            log.info("ingest authorized", extra={"channelId": reply.channel_id})
        else:
            log.info("ingest refused", extra={"reason": reply.reason})
