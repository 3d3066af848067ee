"""`channels.ingest.authorize`: core NATS request/reply, answered by every replica through one
queue group. The request carries a stream key, so nothing here logs the request, its parse errors
or the key; replies and logs carry the outcome only."""

from __future__ import annotations

import logging

import orjson
from nats.aio.msg import Msg
from prometheus_client import Counter
from pydantic import ValidationError

from contracts.requests import IngestAuthorizeReply, IngestAuthorizeRequest
from contracts.subjects import CHANNELS_INGEST_AUTHORIZE
from servicekit.messaging import SubscriptionWorker, handling_span

from channels_service.streamkeys import service

log = logging.getLogger("channels.ingest")
QUEUE_GROUP = "channels"
MAX_REQUEST_BYTES = 4096

AUTHORIZATIONS = Counter("ingest_authorize_total", "Answers to channels.ingest.authorize", ["outcome"])


def parse_request(data: bytes) -> tuple[str | None, str | None]:
    """(key, None) or (None, why not). Parse errors are reduced to a fixed reason: pydantic's
    messages would quote the input, i.e. the key."""
    if len(data) > MAX_REQUEST_BYTES:
        return None, "malformed request"
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None, "malformed request"
    if not isinstance(document, dict):
        return None, "malformed request"
    raw = document.get("streamKey", document.get("stream_key"))
    if raw is None or raw == "":
        return None, "missing stream key"
    if not isinstance(raw, str):
        return None, "malformed stream key"
    try:
        request = IngestAuthorizeRequest.model_validate(document)
    except ValidationError:
        return None, "malformed request"
    return request.stream_key.get_secret_value(), None


class IngestAuthorizer(SubscriptionWorker):
    __name__ = "ingest-authorizer"

    async def subscribe(self, runtime):
        return await runtime.nats.subscribe(CHANNELS_INGEST_AUTHORIZE, queue=QUEUE_GROUP, cb=self.handle)

    async def answer(self, data: bytes) -> IngestAuthorizeReply:
        key, problem = parse_request(data)
        if problem is not None:
            return service.refusal(problem)
        try:
            async with self._runtime.db.session() as session:
                return await service.authorize(session, key)
        except Exception as exc:
            # the exception's text could hold statement parameters: log its type only
            log.error("ingest authorization failed", extra={"errorType": type(exc).__name__})
            return service.refusal("temporarily unavailable")

    async def handle(self, msg: Msg) -> None:
        with handling_span(msg, f"answer {CHANNELS_INGEST_AUTHORIZE}"):
            await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        reply = await self.answer(msg.data)
        AUTHORIZATIONS.labels("allowed" if reply.allowed else (reply.reason or "refused")).inc()
        if reply.allowed:
            log.info("ingest authorized", extra={"channelId": reply.channel_id})
        else:
            log.info("ingest refused", extra={"reason": reply.reason})
        if msg.reply:
            try:
                await msg.respond(reply.to_json_bytes())
            except Exception as exc:
                log.warning("could not send the ingest authorization reply",
                            extra={"errorType": type(exc).__name__})
