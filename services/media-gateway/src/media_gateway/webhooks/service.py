"""Provider webhooks -> the same media.* events as the local ingest.

Mux (https://docs.mux.com/webhook-reference): `{type, id, created_at, object: {type, id},
environment, data}`; live-stream events carry the live stream as `data` (`id`, `status`,
`passthrough`, `playback_ids`, and also its `stream_key`, which we never read or log), asset
events carry the asset (`id`, `live_stream_id`, `passthrough`, `duration`, `playback_ids`).

Cloudflare Stream live inputs (https://developers.cloudflare.com/stream/stream-live/webhooks/):
`{name, text, data: {notification_name, input_id, event_type, updated_at, live_input_errored?}, ts}`.
Cloudflare Stream videos, including live recordings
(https://developers.cloudflare.com/stream/manage-video-library/using-webhooks/): the video object
(`uid`, `readyToStream`, `status: {state}`, `meta`, `liveInput`, `duration`, `playback: {hls, dash}`,
`modified`).

Both providers map a stream to a channel through a field we set to the channel id: Mux's
`passthrough`, Cloudflare's `meta.channelId` (or CLOUDFLARE_INPUT_CHANNELS for live inputs, whose
notifications carry no meta). Deliveries are deduplicated on the provider's event id (Cloudflare
sends none: we derive one from input, type and time), and per provider stream the newest event
time wins, so a late `connected` cannot undo a `disconnected`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events.media import (
    IngestConnected,
    IngestDisconnected,
    IngestErrored,
    MediaProvider,
    RecordingReady,
)
from contracts.subjects import (
    MEDIA_INGEST_CONNECTED,
    MEDIA_INGEST_DISCONNECTED,
    MEDIA_INGEST_ERRORED,
    MEDIA_RECORDING_READY,
)
from servicekit.outbox import stage_event

from media_gateway.config import Settings
from media_gateway.ingest.service import SOURCE
from media_gateway.webhooks.models import Notice, NoticeKind, Outcome, ProviderEvent, ProviderStream

log = logging.getLogger("media_gateway.webhooks")

MAX_ID_LENGTH = 255


class BadPayload(ValueError):
    """A correctly signed body that is not the provider's documented shape."""


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (Cloudflare sends nanoseconds; Python takes microseconds) or unix seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_ID_LENGTH:
        return value.strip()
    return None


def _object(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


# ---- Mux -------------------------------------------------------------------------------------

_MUX_LIVE = {
    "video.live_stream.connected": NoticeKind.CONNECTED,
    "video.live_stream.active": NoticeKind.CONNECTED,
    "video.live_stream.disconnected": NoticeKind.DISCONNECTED,
    "video.live_stream.idle": NoticeKind.DISCONNECTED,
}


def _mux_playback_url(settings: Settings, data: dict) -> str | None:
    ids = [p for p in data.get("playback_ids") or [] if isinstance(p, dict) and _text(p.get("id"))]
    ids.sort(key=lambda p: p.get("policy") != "public")  # a public id plays without a token
    if not ids:
        return None
    return f"{settings.mux_playback_base_url.rstrip('/')}/{ids[0]['id']}.m3u8"


def translate_mux(payload: dict, settings: Settings) -> Notice | None:
    event_type, event_id, data = _text(payload.get("type")), _text(payload.get("id")), payload.get("data")
    if event_type is None or event_id is None or not isinstance(data, dict):
        raise BadPayload("A Mux event has a type, an id and a data object.")
    at = parse_time(payload.get("created_at")) or datetime.now(UTC)
    channel_id = _text(data.get("passthrough"))
    if event_type in _MUX_LIVE:
        stream_id = _text(data.get("id")) or _text(_object(payload.get("object")).get("id"))
        if stream_id is None:
            raise BadPayload("A Mux live-stream event names its live stream.")
        return Notice(MediaProvider.MUX, event_id, event_type, _MUX_LIVE[event_type], stream_id, at, channel_id,
                      hls_url=_mux_playback_url(settings, data))
    if event_type == "video.asset.ready":
        asset_id = _text(data.get("id"))
        if asset_id is None:
            raise BadPayload("A Mux asset event names its asset.")
        vod_url = _mux_playback_url(settings, data)
        if vod_url is None:
            return None
        duration = data.get("duration")
        return Notice(MediaProvider.MUX, event_id, event_type, NoticeKind.RECORDING,
                      _text(data.get("live_stream_id")) or asset_id, at, channel_id, vod_url=vod_url,
                      duration_seconds=float(duration) if isinstance(duration, (int, float)) else 0.0)
    return None


# ---- Cloudflare Stream -------------------------------------------------------------------------

_CF_LIVE = {
    "live_input.connected": NoticeKind.CONNECTED,
    "live_input.disconnected": NoticeKind.DISCONNECTED,
    "live_input.errored": NoticeKind.ERRORED,
}


def _cf_channel(settings: Settings, meta: Any, input_id: str | None) -> str | None:
    channel_id = _text(_object(meta).get("channelId"))
    if channel_id is None and input_id is not None:
        channel_id = _text(settings.cloudflare_input_channels.get(input_id))
    return channel_id


def is_cloudflare_live_notification(payload: dict) -> bool:
    return isinstance(payload.get("data"), dict) and "event_type" in payload["data"]


def translate_cloudflare_live(payload: dict, settings: Settings) -> Notice | None:
    data = _object(payload.get("data"))
    event_type, input_id = _text(data.get("event_type")), _text(data.get("input_id"))
    if event_type is None or input_id is None:
        raise BadPayload("A Cloudflare live-input notification has data.event_type and data.input_id.")
    kind = _CF_LIVE.get(event_type)
    if kind is None:
        return None
    when = data.get("updated_at") or payload.get("ts")
    at = parse_time(when) or datetime.now(UTC)
    # Cloudflare sends no event id: the same input, type and provider time is the same event
    digest = hashlib.sha256(f"{input_id}|{event_type}|{when}".encode()).hexdigest()[:40]
    error = None
    if kind is NoticeKind.ERRORED:
        detail = _object(data.get("live_input_errored"))
        inner = _object(detail.get("error"))
        error = (_text(inner.get("message")) or _text(detail.get("message")) or _text(inner.get("code"))
                 or _text(detail.get("code")))
    hls = None
    if kind is NoticeKind.CONNECTED and settings.cloudflare_playback_base_url:
        hls = f"{settings.cloudflare_playback_base_url.rstrip('/')}/{input_id}/manifest/video.m3u8"
    channel_id = _cf_channel(settings, data.get("meta") or payload.get("meta"), input_id)
    return Notice(MediaProvider.CLOUDFLARE, f"live:{digest}", event_type, kind, input_id, at, channel_id,
                  hls_url=hls, error=error)


def translate_cloudflare_video(payload: dict, settings: Settings) -> Notice | None:
    uid = _text(payload.get("uid"))
    if uid is None:
        raise BadPayload("A Cloudflare video webhook has a uid.")
    state = _text(_object(payload.get("status")).get("state"))
    vod_url = _text(_object(payload.get("playback")).get("hls"))
    if state != "ready" or payload.get("readyToStream") is not True or vod_url is None:
        return None  # still processing, or failed: nothing to announce yet
    live_input = _text(payload.get("liveInput"))
    duration = payload.get("duration")
    return Notice(MediaProvider.CLOUDFLARE, f"video:{uid}:ready", "video.ready", NoticeKind.RECORDING,
                  live_input or uid, parse_time(payload.get("modified")) or datetime.now(UTC),
                  _cf_channel(settings, payload.get("meta"), live_input), vod_url=vod_url,
                  duration_seconds=max(0.0, float(duration)) if isinstance(duration, (int, float)) else 0.0)


# ---- applying a notice ---------------------------------------------------------------------------

async def _stage(session: AsyncSession, notice: Notice) -> None:
    assert notice.channel_id is not None
    common = {"channel_id": notice.channel_id, "provider": notice.provider,
              "ingest_session_id": notice.stream_id, "at": notice.at}
    if notice.kind is NoticeKind.CONNECTED:
        event_type, payload = MEDIA_INGEST_CONNECTED, IngestConnected(**common, hls_url=notice.hls_url)
    elif notice.kind is NoticeKind.DISCONNECTED:
        event_type, payload = MEDIA_INGEST_DISCONNECTED, IngestDisconnected(**common)
    elif notice.kind is NoticeKind.ERRORED:
        event_type, payload = MEDIA_INGEST_ERRORED, IngestErrored(**common, error=notice.error)
    else:
        event_type, payload = MEDIA_RECORDING_READY, RecordingReady(
            channel_id=notice.channel_id, ingest_session_id=notice.stream_id, vod_url=notice.vod_url or "",
            duration_seconds=notice.duration_seconds or 0.0)
    await stage_event(session, event_type, payload, source=SOURCE, key=notice.channel_id)


async def _advance_stream(session: AsyncSession, notice: Notice) -> Outcome:
    """Move the provider stream to the notice's state unless that would go backwards."""
    created = (await session.exec(
        insert(ProviderStream).values(provider=notice.provider.value, stream_id=notice.stream_id,
                                      channel_id=notice.channel_id, last_state=notice.kind.value,
                                      last_event_at=notice.at)
        .on_conflict_do_nothing(index_elements=["provider", "stream_id"])
        .returning(ProviderStream.stream_id))).first()
    if created is not None:
        return Outcome.PUBLISHED
    row = (await session.exec(select(ProviderStream).where(
        ProviderStream.provider == notice.provider.value, ProviderStream.stream_id == notice.stream_id)
        .with_for_update())).one()
    if notice.at < row.last_event_at:
        return Outcome.OUT_OF_ORDER
    outcome = Outcome.UNCHANGED if row.last_state == notice.kind.value else Outcome.PUBLISHED
    row.last_state = notice.kind.value
    row.last_event_at = notice.at
    row.channel_id = notice.channel_id
    row.updated_at = datetime.now(UTC)
    session.add(row)
    return outcome


async def apply(session: AsyncSession, notice: Notice) -> Outcome:
    """Record the delivery and stage its media.* event when it tells something new (caller commits)."""
    fresh = (await session.exec(
        insert(ProviderEvent).values(provider=notice.provider.value, event_id=notice.event_id,
                                     event_type=notice.event_type, stream_id=notice.stream_id, outcome="")
        .on_conflict_do_nothing(constraint="uq_provider_events_provider_event_id")
        .returning(ProviderEvent.id))).first()
    if fresh is None:
        return Outcome.DUPLICATE
    if notice.channel_id is None:
        outcome = Outcome.UNMAPPED
    elif notice.kind is NoticeKind.RECORDING:
        outcome = Outcome.PUBLISHED
    else:
        outcome = await _advance_stream(session, notice)
    if outcome is Outcome.PUBLISHED:
        await _stage(session, notice)
    await session.exec(update(ProviderEvent).where(ProviderEvent.id == fresh[0]).values(outcome=outcome.value))
    log.info("provider event", extra={"provider": notice.provider.value, "eventType": notice.event_type,
                                      "streamId": notice.stream_id, "channelId": notice.channel_id,
                                      "outcome": outcome.value})
    return outcome

