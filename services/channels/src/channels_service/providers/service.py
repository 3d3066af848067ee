"""Hosted providers (Mux, Cloudflare Stream) for a channel's video.

Creating a channel with, or switching it to, a hosted provider creates the provider's live stream
(Mux: `passthrough` = channel id) or live input (Cloudflare: `meta.channelId` = channel id) before
our transaction commits: a provider failure answers 502/503 and the transaction rolls back, so
nothing half-done is stored. Should our commit fail after the provider created something, that is
deleted again (best effort), and the provider stream a switch replaces is deleted after the commit
(a failure there is logged and leaves an orphan at the provider, never a broken channel).

Ending a stream (`stream.end_requested`) completes the Mux live stream or disables the Cloudflare
input (which has no "complete"); a disabled input is enabled again by the channel's next Go live
(`stream.created`). Both run in the `channels-provider-control` inbox consumer: a provider failure
is retried with the consumer's backoff, then dead-lettered.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from servicekit.problems import Problem

from channels_service.channels.models import Channel
from channels_service.config import Settings
from channels_service.providers import clients
from channels_service.providers.clients import CLOUDFLARE, LOCAL, MUX, NotConfigured, ProviderError, ProvisionedStream
from channels_service.providers.models import ProviderStream

log = logging.getLogger("channels.providers")

CONTROL_EVENTS = ("stream.end_requested", "stream.created")

def _client(settings: Settings, provider: str):
    try:
        return clients.client_for(settings, provider)
    except NotConfigured as exc:
        raise Problem(422, str(exc), errors=[{"field": "provider", "message": str(exc),
                                              "type": "not_configured"}]) from None


def require_configured(settings: Settings, provider: str | None) -> None:
    """422 before anything is written when `provider` cannot be used on this server."""
    if provider not in (None, LOCAL):
        _client(settings, provider)


async def _do(call):
    try:
        return await call
    except ProviderError as exc:
        raise Problem(exc.status, exc.detail) from None


@dataclass
class Change:
    """A provider stream created in the open transaction, and one to delete once it commits."""

    created: ProvisionedStream | None = None
    retired: tuple[str, str] | None = None  # (provider, stream id)


def _store(row: ProviderStream, made: ProvisionedStream) -> None:
    row.provider, row.stream_id, row.stream_key, row.rtmp_url = (made.provider, made.stream_id, made.stream_key,
                                                                  made.rtmp_url)
    row.srt_url, row.playback_id, row.playback_url, row.enabled = made.srt_url, made.playback_id, made.playback_url, True


async def current(session: AsyncSession, channel: Channel, *, lock: bool = False) -> ProviderStream | None:
    if (channel.provider or LOCAL) == LOCAL:
        return None
    return await session.get(ProviderStream, channel.id, with_for_update=lock or None)


async def attach(session: AsyncSession, settings: Settings, channel: Channel, provider: str) -> Change:
    """A new channel's provider stream (nothing for `local`)."""
    if provider == LOCAL:
        return Change()
    made = await _do(_client(settings, provider).create(str(channel.id)))
    row = ProviderStream(channel_id=channel.id, provider=provider, stream_id=made.stream_id, stream_key="",
                         rtmp_url="")
    _store(row, made)
    session.add(row)
    channel.provider = provider
    session.add(channel)
    await session.flush()
    return Change(created=made)


async def switch(session: AsyncSession, settings: Settings, channel: Channel, provider: str | None) -> Change:
    if provider is None or provider == (channel.provider or LOCAL):
        return Change()
    if channel.is_live:
        raise Problem(409, "The channel is live: end the stream before switching its provider.",
                      errors=[{"field": "provider", "message": "cannot switch while live", "type": "conflict"}])
    require_configured(settings, provider)
    row = await session.get(ProviderStream, channel.id, with_for_update=True)
    retired = (row.provider, row.stream_id) if row is not None else None
    made = None
    if provider != LOCAL:
        made = await _do(_client(settings, provider).create(str(channel.id)))
        if row is None:
            row = ProviderStream(channel_id=channel.id, provider=provider, stream_id=made.stream_id,
                                 stream_key="", rtmp_url="")
        _store(row, made)
        session.add(row)
    elif row is not None:
        await session.delete(row)
    channel.provider = provider
    session.add(channel)
    await session.flush()
    log.info("channel provider switched", extra={"channelId": str(channel.id), "provider": provider})
    return Change(created=made, retired=retired)


async def rotate(session: AsyncSession, settings: Settings, channel: Channel, row: ProviderStream) -> Change:
    """Mux resets the key in place; a Cloudflare input cannot reset its key, so a new input
    replaces it (new key, new id, new playback URL) and the old one is deleted after the commit."""
    if row.provider == MUX:
        made = await _do(_client(settings, MUX).reset_key(row.stream_id))
        row.stream_key, row.srt_url = made.stream_key, made.srt_url
        session.add(row)
        await session.flush()
        return Change()
    retired = (row.provider, row.stream_id)
    made = await _do(_client(settings, row.provider).create(str(channel.id)))
    _store(row, made)
    session.add(row)
    await session.flush()
    return Change(created=made, retired=retired)


async def _delete(settings: Settings, provider: str, stream_id: str, why: str) -> None:
    try:
        client = clients.client_for(settings, provider)
        await client.delete(stream_id)
    except (ProviderError, NotConfigured) as exc:
        log.warning("provider stream left behind", extra={"provider": provider, "providerStreamId": stream_id,
                                                          "why": why, "errorType": type(exc).__name__})


async def commit(session: AsyncSession, settings: Settings, change: Change) -> None:
    """Commit; undo the provider stream created for this transaction if that fails, and delete
    the one it replaced if it succeeds."""
    try:
        await session.commit()
    except BaseException:
        if change.created is not None:
            await _delete(settings, change.created.provider, change.created.stream_id, "commit failed")
        raise
    if change.retired is not None:
        await _delete(settings, *change.retired, why="replaced")


# ---- ending and Go live (inbox consumer) -------------------------------------------------------

def control_handler(settings: Settings):
    async def handle(session: AsyncSession, event: Envelope) -> None:
        data = event.data
        raw = getattr(data, "channel_id", None)
        try:
            channel_id = uuid.UUID(str(raw))
        except ValueError:
            return
        channel = await session.get(Channel, channel_id)
        if channel is None:
            return
        row = await current(session, channel, lock=True)
        if row is None:
            return
        try:
            client = clients.client_for(settings, row.provider)
        except NotConfigured:
            log.error("provider not configured: stream not ended there",
                      extra={"channelId": str(channel_id), "provider": row.provider})
            return
        if event.type == "stream.end_requested":
            if row.provider == MUX:
                await client.end(row.stream_id)
            elif row.provider == CLOUDFLARE:
                await client.set_enabled(row.stream_id, str(channel_id), False)
                row.enabled = False
                session.add(row)
            log.info("provider stream ended", extra={"channelId": str(channel_id), "provider": row.provider})
        elif event.type == "stream.created" and row.provider == CLOUDFLARE and not row.enabled:
            await client.set_enabled(row.stream_id, str(channel_id), True)
            row.enabled = True
            session.add(row)
            log.info("provider input enabled", extra={"channelId": str(channel_id), "provider": row.provider})

    return handle
