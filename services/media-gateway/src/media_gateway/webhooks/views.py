"""Provider webhooks (public, through the gateway). The signature is checked over the raw bytes
before the body is parsed; without a configured secret an endpoint refuses everything (503)."""

import dataclasses
import logging
import time

import orjson
from fastapi import APIRouter, Request

from contracts.events.media import MediaProvider
from contracts.requests import PROVIDER_LOOKUP, ProviderLookupRequest
from servicekit import messaging
from servicekit.problems import Problem, problem_responses

from media_gateway.config import configured
from media_gateway.deps import Runtime, SessionDep, SettingsDep, read_limited_body
from media_gateway.webhooks import service, signatures
from media_gateway.webhooks.models import Notice, Outcome, WebhookAck
from media_gateway.webhooks.signatures import SignatureError

log = logging.getLogger("media_gateway.webhooks")
router = APIRouter(prefix="/api/webhooks", tags=["provider webhooks"])

_JSON_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}
_ANSWERS = problem_responses(400, 413, 503)


def _not_configured(what: str, variable: str) -> Problem:
    return Problem(503, f"{what} webhooks are not configured on this server ({variable} is unset).")


def _bad_signature(provider: str, exc: SignatureError) -> Problem:
    log.warning("webhook refused", extra={"provider": provider, "reason": str(exc)})
    return Problem(400, str(exc))


def _json_object(body: bytes) -> dict:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise Problem(400, "The body is not a JSON object.")
    return payload


async def _with_channel(runtime, settings, notice: Notice | None) -> Notice | None:
    """Cloudflare's live-input notifications carry no meta: ask channels which channel uses the
    input (it created it). Unanswered: 503 and nothing recorded, so a redelivery can still map it."""
    if notice is None or notice.channel_id is not None:
        return notice
    try:
        reply = await messaging.ask(runtime.nats, PROVIDER_LOOKUP,
                                    ProviderLookupRequest(provider=notice.provider.value, stream_id=notice.stream_id),
                                    timeout=settings.authorize_timeout_seconds)
    except messaging.NoAnswer as exc:
        log.warning("provider lookup unanswered", extra={"provider": notice.provider.value, "reason": str(exc)})
        raise Problem(503, "The channel of this live input cannot be looked up now; deliver it again later.") from None
    return dataclasses.replace(notice, channel_id=reply.channel_id) if reply.found else notice


async def _apply(session, notice: Notice | None, provider: MediaProvider, event_type) -> WebhookAck:
    if notice is None:
        log.info("provider event ignored", extra={"provider": provider.value, "eventType": event_type})
        return WebhookAck(status=Outcome.IGNORED)
    outcome = await service.apply(session, notice)
    await session.commit()
    return WebhookAck(status=outcome)


@router.post("/mux", response_model=WebhookAck, openapi_extra=_JSON_BODY, responses=_ANSWERS)
async def mux_webhook(request: Request, session: SessionDep, settings: SettingsDep) -> WebhookAck:
    """Mux live-stream and asset events, signed with `Mux-Signature: t=<unix>,v1=<hex>`."""
    secret = configured(settings.mux_webhook_secret)
    if secret is None:
        raise _not_configured("Mux", "MUX_WEBHOOK_SECRET")
    body = await read_limited_body(request, settings.webhook_max_body_bytes)
    try:
        signatures.verify_mux(secret, request.headers.get("mux-signature"), body, now=time.time(),
                              tolerance=settings.webhook_tolerance_seconds)
    except SignatureError as exc:
        raise _bad_signature("mux", exc) from None
    payload = _json_object(body)
    try:
        notice = service.translate_mux(payload, settings)
    except service.BadPayload as exc:
        raise Problem(400, str(exc)) from None
    return await _apply(session, notice, MediaProvider.MUX, payload.get("type"))


@router.post("/cloudflare", response_model=WebhookAck, openapi_extra=_JSON_BODY, responses=_ANSWERS)
async def cloudflare_webhook(request: Request, session: SessionDep, settings: SettingsDep,
                             runtime: Runtime) -> WebhookAck:
    """Cloudflare Stream: live-input notifications (`cf-webhook-auth: <shared secret>`) and video /
    recording webhooks (`Webhook-Signature: time=<unix>,sig1=<hex>`)."""
    signed = request.headers.get("webhook-signature")
    shared = request.headers.get("cf-webhook-auth")
    auth_secret = configured(settings.cloudflare_webhook_auth)
    signing_secret = configured(settings.cloudflare_webhook_secret)
    if signed is not None:
        if signing_secret is None:
            raise _not_configured("Cloudflare Stream video", "CLOUDFLARE_WEBHOOK_SECRET")
    elif shared is not None:
        if auth_secret is None:
            raise _not_configured("Cloudflare Stream live-input", "CLOUDFLARE_WEBHOOK_AUTH")
    elif auth_secret is None and signing_secret is None:
        raise _not_configured("Cloudflare Stream", "CLOUDFLARE_WEBHOOK_AUTH / CLOUDFLARE_WEBHOOK_SECRET")
    body = await read_limited_body(request, settings.webhook_max_body_bytes)
    try:
        if signed is not None:
            signatures.verify_cloudflare_signature(signing_secret, signed, body, now=time.time(),
                                                   tolerance=settings.webhook_tolerance_seconds)
        elif shared is not None:
            signatures.verify_shared_secret(auth_secret, shared)
        else:
            raise SignatureError("Neither Webhook-Signature nor cf-webhook-auth was sent.")
    except SignatureError as exc:
        raise _bad_signature("cloudflare", exc) from None
    payload = _json_object(body)
    try:
        if service.is_cloudflare_live_notification(payload):
            notice = service.translate_cloudflare_live(payload, settings)
            event_type = payload["data"].get("event_type")
            notice = await _with_channel(runtime, settings, notice)
        else:
            notice = service.translate_cloudflare_video(payload, settings)
            event_type = "video"
    except service.BadPayload as exc:
        raise Problem(400, str(exc)) from None
    return await _apply(session, notice, MediaProvider.CLOUDFLARE, event_type)
