"""Simulcast destinations: stored per channel, keys encrypted at rest, answered (decrypted) only
to the media gateway's `channels.simulcast.destinations` request, states reported back by it.

Validation refuses what the platform must not connect to on a creator's behalf: anything but
rtmp:// and rtmps://, and (unless SIMULCAST_ALLOW_PRIVATE_DESTINATIONS) a host that is or resolves
to a loopback, private, link-local or otherwise non-public address, so a destination cannot
point the ingest nodes at the platform's own network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.events.channels import DestinationsUpdated
from contracts.events.media import SimulcastStateChanged
from contracts.requests import SimulcastDestinationsReply, SimulcastTarget
from servicekit.outbox import stage_event
from servicekit.problems import Problem

from channels_service.channels.models import Channel
from channels_service.channels.service import SOURCE
from channels_service.config import Settings
from channels_service.schemas import parse_uuid
from channels_service.simulcast.models import DestinationCreate, DestinationUpdate, SimulcastDestination

log = logging.getLogger("channels.simulcast")

SCHEMES = ("rtmp", "rtmps")
STATE_EVENTS = ("media.simulcast.state_changed",)
RESOLVE_TIMEOUT_SECONDS = 3.0
MAX_ERROR_CHARS = 300


class NotConfigured(Exception):
    pass


def cipher(settings: Settings) -> MultiFernet:
    """The first key encrypts; every listed key decrypts (rotation: put the new key first)."""
    if settings.simulcast_encryption_key is None:
        raise NotConfigured
    raw = [k.strip() for k in settings.simulcast_encryption_key.get_secret_value().split(",") if k.strip()]
    if not raw:
        raise NotConfigured
    return MultiFernet([Fernet(k.encode()) for k in raw])


def require_cipher(settings: Settings) -> MultiFernet:
    try:
        return cipher(settings)
    except NotConfigured:
        raise Problem(503, "Simulcast is not configured on this platform (SIMULCAST_ENCRYPTION_KEY).") from None


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, f"{field}: {message}", errors=[{"field": field, "message": message}])


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def check_url(url: str, settings: Settings) -> str:
    """The URL as stored (no trailing slash), or a 422 saying why not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid("url", "is not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES:
        raise _invalid("url", "must start with rtmp:// or rtmps://")
    host = parts.hostname
    if not host:
        raise _invalid("url", "has no host")
    if parts.username is not None or parts.password is not None:
        raise _invalid("url", "must not carry credentials; put the key in streamKey")
    if parts.query or parts.fragment or any(c.isspace() or ord(c) < 32 for c in url):
        raise _invalid("url", "must be a plain rtmp(s)://host[:port]/app URL")
    if port == 0:
        raise _invalid("url", "has no usable port")
    if not settings.simulcast_allow_private_destinations:
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = await _resolve(host, port)
        if not addresses:
            raise _invalid("url", "host does not resolve")
        if not all(_public(a) for a in addresses):
            raise _invalid("url", "points to a private, loopback or otherwise non-public address")
    return url.rstrip("/")


async def _resolve(host: str, port: int | None) -> list:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port or 1935, type=socket.SOCK_STREAM),
                                       RESOLVE_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, UnicodeError):
        return []
    out = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        except ValueError:
            continue
    return out


def check_key(key: str) -> str:
    # it becomes the last segment of an RTMP URL handed to ffmpeg
    if any(c in key for c in "/?#\\") or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in key):
        raise _invalid("streamKey", "must not contain '/', '?', '#', '\\', spaces or control characters")
    return key


async def list_for(session: AsyncSession, channel_id: uuid.UUID) -> list[SimulcastDestination]:
    result = await session.exec(select(SimulcastDestination)
                                .where(SimulcastDestination.channel_id == channel_id)
                                .order_by(SimulcastDestination.created_at, SimulcastDestination.id))
    return list(result.all())


async def get_or_raise(session: AsyncSession, channel: Channel, destination_id: str, *,
                       lock: bool = False) -> SimulcastDestination:
    did = parse_uuid(destination_id)
    row = await session.get(SimulcastDestination, did, with_for_update=lock or None) if did else None
    if row is None or row.channel_id != channel.id:
        raise Problem(404, "No such destination.")
    return row


async def _announce(session: AsyncSession, channel_id: uuid.UUID) -> None:
    await stage_event(session, "channel.destinations_updated",
                      DestinationsUpdated(channel_id=str(channel_id), at=datetime.now(UTC)),
                      source=SOURCE, key=str(channel_id))


async def create(session: AsyncSession, settings: Settings, channel: Channel,
                 body: DestinationCreate) -> SimulcastDestination:
    fernet = require_cipher(settings)
    url = await check_url(body.url, settings)
    key = check_key(body.stream_key)
    # the per-channel limit, checked under the channel's row lock so two creates cannot both pass
    await session.get(Channel, channel.id, with_for_update=True)
    count = (await session.exec(select(func.count()).select_from(SimulcastDestination)
                                .where(SimulcastDestination.channel_id == channel.id))).one()
    if count >= settings.simulcast_max_destinations:
        raise Problem(409, f"A channel may have at most {settings.simulcast_max_destinations} destinations.")
    row = SimulcastDestination(channel_id=channel.id, name=body.name, url=url,
                               key_ciphertext=fernet.encrypt(key.encode()), key_suffix=key[-4:],
                               enabled=body.enabled)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await _announce(session, channel.id)
    return row


async def update(session: AsyncSession, settings: Settings, row: SimulcastDestination,
                 body: DestinationUpdate) -> SimulcastDestination:
    fields = body.model_fields_set
    for name in ("name", "url", "stream_key", "enabled"):
        if name in fields and getattr(body, name) is None:
            raise _invalid(name if name != "stream_key" else "streamKey", "must not be null")
    if body.url is not None:
        row.url = await check_url(body.url, settings)
    if body.stream_key is not None:
        key = check_key(body.stream_key)
        row.key_ciphertext, row.key_suffix = require_cipher(settings).encrypt(key.encode()), key[-4:]
    if body.name is not None:
        row.name = body.name
    if body.enabled is not None:
        row.enabled = body.enabled
    row.updated_at = datetime.now(UTC)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await _announce(session, row.channel_id)
    return row


async def delete(session: AsyncSession, row: SimulcastDestination) -> None:
    channel_id = row.channel_id
    await session.delete(row)
    await session.flush()
    await _announce(session, channel_id)


def target_url(url: str, key: str) -> str:
    return f"{url}/{key}"


async def targets(session: AsyncSession, settings: Settings, channel_id: str) -> SimulcastDestinationsReply:
    """The enabled destinations with their keys decrypted, for the ingest node holding the session.
    A key that no configured key decrypts (the encryption key was replaced without keeping the old
    one) is left out and reported as that destination's failure."""
    cid = parse_uuid(channel_id)
    if cid is None:
        return SimulcastDestinationsReply(destinations=[])
    try:
        fernet = cipher(settings)
    except NotConfigured:
        return SimulcastDestinationsReply(destinations=[])
    out = []
    for row in await list_for(session, cid):
        if not row.enabled:
            continue
        try:
            key = fernet.decrypt(row.key_ciphertext).decode()
        except InvalidToken:
            log.error("a simulcast key could not be decrypted", extra={"destinationId": str(row.id)})
            row.state, row.last_error, row.state_at = ("failed", "the stored key cannot be decrypted; set it again",
                                                       datetime.now(UTC))
            session.add(row)
            continue
        out.append(SimulcastTarget(id=str(row.id), url=target_url(row.url, key), key_suffix=row.key_suffix))
    await session.commit()
    return SimulcastDestinationsReply(destinations=out)


async def handle_state_event(session: AsyncSession, event: Envelope) -> None:
    """Apply a forwarder's state, unless a newer one is already stored (events may arrive late)."""
    data = event.data
    if not isinstance(data, SimulcastStateChanged):
        return
    did = parse_uuid(data.destination_id)
    row = await session.get(SimulcastDestination, did, with_for_update=True) if did else None
    if row is None or str(row.channel_id) != data.channel_id:
        return  # deleted since
    if row.state_at is not None and row.state_at > data.at:
        return
    row.state = data.state.value
    row.last_error = (data.last_error or None) and data.last_error[:MAX_ERROR_CHARS]
    row.state_at = data.at
    session.add(row)
    await session.flush()
