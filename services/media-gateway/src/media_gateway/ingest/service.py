"""Local ingest sessions: authorize a stream key, rename the stream, end, revoke and drop it.

The stream key arrives in nginx-rtmp's callbacks and leaves this module only inside the
`channels.ingest.authorize` request. It is never logged, stored or put into an event: sessions
are named by a random id, and only a SHA-256 digest is kept to recognise nginx-rtmp's later
callbacks (which repeat the key).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from datetime import UTC, datetime, timedelta

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import ValidationError
from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.events.media import IngestConnected, IngestDisconnected, MediaProvider
from contracts.requests import IngestAuthorizeReply, IngestAuthorizeRequest
from contracts.subjects import (
    CHANNEL_STREAM_KEY_ROTATED,
    CHANNELS_INGEST_AUTHORIZE,
    MEDIA_INGEST_CONNECTED,
    MEDIA_INGEST_DISCONNECTED,
    STREAM_END_REQUESTED,
)
from servicekit import messaging
from servicekit.db import Database
from servicekit.outbox import stage_event
from servicekit.periodic import every

from media_gateway.config import Settings
from media_gateway.ingest.models import IngestSession
from media_gateway.ingest.source_pull import SOURCE_APP, SourcePulls

if TYPE_CHECKING:
    from media_gateway.ingest.nodes import NodeDrops

log = logging.getLogger("media_gateway.ingest")

SOURCE = "media-gateway"
MAX_KEY_LENGTH = 128
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,128}")
# nginx-rtmp names the source rendition <session id><SOURCE_SUFFIX>; the ladder's variants append
# their own suffix to that (deploy/ingest/nginx-rtmp.conf.template, media_gateway.ingest.nginx_conf)
SOURCE_SUFFIX = "_src"


class Refused(Exception):
    """The publish is refused; `reason` is safe to log (it never contains the key)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_key_shape(key: str) -> None:
    """Refuse empty, oversized or path-like keys before anyone is asked about them."""
    if not key:
        raise Refused("empty key")
    if len(key) > MAX_KEY_LENGTH:
        raise Refused("oversized key")
    if not _KEY_SHAPE.fullmatch(key):
        raise Refused("malformed key")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_hex(16)


def source_stream_name(session_id: str) -> str:
    return f"{session_id}{SOURCE_SUFFIX}"


def redirect_target(settings: Settings, session_id: str) -> str:
    """The fallback on_publish answer: nginx-rtmp pushes the source to the internal app that writes
    HLS and records (the usual answer is a local rename, see media_gateway.ingest.source_pull)."""
    return f"{settings.rtmp_internal_url.rstrip('/')}/{SOURCE_APP}/{source_stream_name(session_id)}"


def relay_name_for(target: str) -> str:
    """The local name nginx-rtmp gives the publisher after a relay redirect: md5 of the URL."""
    return hashlib.md5(target.encode(), usedforsecurity=False).hexdigest()


def hls_base(settings: Settings) -> str:
    """This node's public HLS path: the gateway routes `/hls/<node>/...` to the node's origin."""
    return f"{settings.hls_base_url.rstrip('/')}/{settings.ingest_node}"


def hls_url(settings: Settings, session_id: str) -> str:
    return f"{hls_base(settings)}/{session_id}/index.m3u8"


def session_id_from_stream_name(name: str) -> str | None:
    """`<id>_src` or `<id>_src_480p` (or a recording's file stem) -> `<id>`."""
    head = name.split("_", 1)[0]
    return head if re.fullmatch(r"[0-9a-f]{32}", head) else None


async def authorize(nc, key: str, client_ip: str | None, timeout: float) -> str:
    """Ask channels who owns `key`; returns the channel id or raises Refused."""
    request = IngestAuthorizeRequest(stream_key=key, client_ip=client_ip or None)
    try:
        msg = await messaging.request(nc, CHANNELS_INGEST_AUTHORIZE, request.to_json_bytes(), timeout=timeout)
    except NoRespondersError:
        raise Refused("channels service unavailable") from None
    except NatsTimeout:
        raise Refused("channels service timed out") from None
    try:
        reply = IngestAuthorizeReply.model_validate_json(msg.data)
    except ValidationError:
        raise Refused("unreadable authorization reply") from None
    if not reply.allowed or reply.channel_id is None:
        raise Refused(f"refused by channels: {reply.reason or 'no reason given'}")
    return reply.channel_id


@dataclass(frozen=True)
class Superseded:
    session_id: str
    relay_name: str
    node: str


async def end_open_sessions_of_channel(session: AsyncSession, channel_id: str, reason: str) -> list[Superseded]:
    """A new publish for a channel replaces any older one still open (one live publish per channel)."""
    rows = (await session.exec(select(IngestSession).where(
        IngestSession.channel_id == channel_id, col(IngestSession.ended_at).is_(None)).with_for_update())).all()
    ended = []
    for row in rows:
        await end_session(session, row, reason)
        ended.append(Superseded(row.id, row.relay_name, row.node))
    return ended


async def open_session(session: AsyncSession, settings: Settings, *, channel_id: str, attempts: int = 3,
                       **start) -> tuple[IngestSession, list[Superseded]]:
    """End the channel's open sessions, then open this one: (the new row, the sessions it ended).

    An older publish of the channel still open (a stale encoder connection, a second encoder with
    the same key) ends first, in its own transaction, so its disconnect is relayed before the new
    connect. A publish of the same channel racing this one may open its session between the two
    commits: the unique open-session index refuses the second insert, and this publish then
    supersedes that one too, as if it had come a moment later."""
    superseded: list[Superseded] = []
    for _ in range(attempts):
        superseded += await end_open_sessions_of_channel(session, channel_id, "superseded by a new publish")
        await session.commit()
        try:
            row = await start_session(session, settings, channel_id=channel_id, **start)
            await session.commit()
            return row, superseded
        except IntegrityError:
            await session.rollback()
            log.info("a concurrent publish of the channel opened first; superseding it",
                     extra={"channelId": channel_id})
    raise Refused("concurrent publishes of one channel kept racing")


async def start_session(session: AsyncSession, settings: Settings, *, session_id: str, channel_id: str, key: str,
                        app: str, client_id: str, client_addr: str | None, pulled: bool) -> IngestSession:
    """`pulled`: src's pull was started, so the publisher is renamed to the source stream's name
    (else nginx-rtmp pushes it and names the publisher md5(push URL))."""
    now = datetime.now(UTC)
    relay_name = source_stream_name(session_id) if pulled else relay_name_for(redirect_target(settings, session_id))
    row = IngestSession(id=session_id, channel_id=channel_id, provider=MediaProvider.LOCAL.value,
                        node=settings.ingest_node, app=app,
                        client_id=client_id, client_addr=client_addr, key_digest=key_digest(key),
                        relay_name=relay_name, started_at=now,
                        last_seen_at=now, next_thumbnail_at=now + timedelta(seconds=settings.thumbnail_retry_seconds))
    session.add(row)
    await stage_event(session, MEDIA_INGEST_CONNECTED, IngestConnected(
        channel_id=channel_id, provider=MediaProvider.LOCAL, ingest_session_id=session_id, at=now,
        hls_url=hls_url(settings, session_id)), source=SOURCE, key=channel_id)
    return row


async def end_session(session: AsyncSession, row: IngestSession, reason: str) -> bool:
    """Close a session and announce it; False when it was already closed (nothing published)."""
    if row.ended_at is not None:
        return False
    now = datetime.now(UTC)
    row.ended_at = now
    row.end_reason = reason
    row.next_thumbnail_at = None
    session.add(row)
    await stage_event(session, MEDIA_INGEST_DISCONNECTED, IngestDisconnected(
        channel_id=row.channel_id, provider=MediaProvider.LOCAL, ingest_session_id=row.id, at=now),
        source=SOURCE, key=row.channel_id)
    return True


async def find_for_callback(session: AsyncSession, node: str, app: str, client_id: str, name: str, *,
                            open_only: bool = True, lock: bool = False) -> IngestSession | None:
    """The session behind an nginx-rtmp callback of the publishing connection.

    nginx-rtmp identifies the connection by `clientid` (a counter that restarts with nginx, and
    that every node's nginx counts on its own) and repeats the name the encoder published with,
    i.e. the stream key: both must match, on the node whose nginx-rtmp calls.
    """
    if not client_id or not name:
        return None
    query = select(IngestSession).where(
        IngestSession.node == node, IngestSession.app == app, IngestSession.client_id == client_id,
        or_(IngestSession.key_digest == key_digest(name), IngestSession.relay_name == name,
            IngestSession.id == name))
    if open_only:
        query = query.where(col(IngestSession.ended_at).is_(None))
    query = query.order_by(col(IngestSession.started_at).desc()).limit(1)
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def revoke_channel_sessions(session: AsyncSession, channel_id: str, before: datetime,
                                  reason: str) -> list[Superseded]:
    """Mark the channel's open sessions that started before `before` as revoked."""
    result = await session.exec(
        update(IngestSession)
        .where(IngestSession.channel_id == channel_id, col(IngestSession.ended_at).is_(None),
               col(IngestSession.revoked_at).is_(None), col(IngestSession.started_at) <= before)
        .values(revoked_at=datetime.now(UTC), revoke_reason=reason)
        .returning(IngestSession.id, IngestSession.relay_name, IngestSession.node))
    return [Superseded(session_id, relay_name, node) for session_id, relay_name, node in result.all()]


async def mark_seen(session: AsyncSession, session_id: str) -> None:
    await session.exec(update(IngestSession).where(IngestSession.id == session_id,
                                                   col(IngestSession.ended_at).is_(None))
                       .values(last_seen_at=datetime.now(UTC)))


class LivenessWorker:
    """Ends sessions nginx-rtmp stopped reporting on (no on_update for `ingest_stale_seconds`).

    That is what a lost on_publish_done looks like: nginx restarted or crashed, or this service was
    down when it was sent. Without this, the channel would stay live forever. The worker waits one
    full stale period after it starts, so updates missed while this service was down do not count.
    Every node sweeps every node's sessions (a dead node cannot end its own); the drop goes to the
    session's node.
    """

    def __init__(self, settings: Settings, drops: NodeDrops):
        self.settings = settings
        self.drops = drops
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, db: Database) -> None:
        started = time.monotonic()

        async def sweep() -> None:
            if time.monotonic() - started >= self.settings.ingest_stale_seconds:
                await self.end_silent_sessions(db)

        # with a logger: the worker outlives any one failure
        await every(self.settings.liveness_poll_seconds, sweep, self._stop,
                    log=log, failed="liveness pass failed")

    async def end_silent_sessions(self, db: Database) -> list[str]:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.ingest_stale_seconds)
        async with db.session() as session:
            rows = (await session.exec(select(IngestSession).where(
                col(IngestSession.ended_at).is_(None),
                func.coalesce(IngestSession.last_seen_at, IngestSession.started_at) < cutoff)
                .limit(100).with_for_update(skip_locked=True))).all()
            ended = []
            for row in rows:
                if await end_session(session, row, "no update from the ingest"):
                    ended.append(Superseded(row.id, row.relay_name, row.node))
            await session.commit()
        for item in ended:
            log.warning("silent ingest session ended", extra={"sessionId": item.session_id, "node": item.node})
            await self.drops.drop(item.node, item.relay_name, item.session_id, release=True)
        return [item.session_id for item in ended]


@dataclass(frozen=True)
class OpenSession:
    id: str
    channel_id: str
    relay_name: str  # the publisher's name in the encoders' application


async def open_local_sessions(db: Database, node: str) -> list[OpenSession]:
    """The open sessions this node holds."""
    async with db.session() as session:
        rows = (await session.exec(select(IngestSession.id, IngestSession.channel_id, IngestSession.relay_name).where(
            col(IngestSession.ended_at).is_(None), IngestSession.provider == MediaProvider.LOCAL.value,
            IngestSession.node == node))).all()
    return [OpenSession(session_id, channel_id, relay_name) for session_id, channel_id, relay_name in rows]


async def is_open(db: Database, session_id: str) -> bool:
    async with db.session() as session:
        return (await session.exec(select(IngestSession.id).where(
            IngestSession.id == session_id, col(IngestSession.ended_at).is_(None)))).first() is not None


async def resume_source_pulls(db: Database, pulls: SourcePulls, node: str) -> int:
    """After a restart: hold the pulls of this node's sessions still open again (they outlived us
    if the transcoder held them; else this starts them again, from the publisher's next key frame)."""
    resumed = 0
    for open_session in await open_local_sessions(db, node):
        session_id = open_session.id
        if not pulls.holds(session_id) and await pulls.start(session_id, source_stream_name(session_id)):
            resumed += 1
    return resumed


# event type -> (sessions opened before this time are revoked, the reason logged)
REVOCATIONS = {
    CHANNEL_STREAM_KEY_ROTATED: lambda event: (event.data.rotated_at, "stream key rotated"),
    STREAM_END_REQUESTED: lambda event: (event.time, "stream ended by its creator"),
}


def make_revocation_handler(drops: NodeDrops):
    """InboxConsumer handler for the events in REVOCATIONS (on any replica: the drop goes to the
    session's node)."""

    async def handle(session: AsyncSession, event: Envelope) -> None:
        revocation = REVOCATIONS.get(event.type)
        if revocation is None:
            return
        before, reason = revocation(event)
        revoked = await revoke_channel_sessions(session, event.data.channel_id, before, reason)
        # the revocation is visible to on_update from the commit on; the active drop makes it
        # immediate (nginx's publish_done callback waits on the row lock until we commit)
        for item in revoked:
            log.info("ingest session revoked", extra={"sessionId": item.session_id, "node": item.node,
                                                      "channelId": event.data.channel_id, "reason": reason})
            await drops.drop(item.node, item.relay_name, item.session_id)

    return handle
