"""Stream keys: issue, rotate, read back (owner only), and answer the media gateway's "who owns
this key?" question.

BRIEF.md's rules: at least 128 random bits (we use 256), constant-time comparison, never logged,
never in an event or a playback URL, and rotation drops a live publish (the media gateway listens
to `channel.stream_key_rotated`, which carries the channel id and never the key).
"""

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events.channels import StreamKeyRotated
from contracts.requests import IngestAuthorizeReply
from servicekit.outbox import stage_event

from channels_service.channels.models import Channel
from channels_service.channels.service import SOURCE
from channels_service.streamkeys.models import StreamKey

KEY_PREFIX = "live_"
MAX_KEY_LENGTH = 128
# what we issue is `live_` + URL-safe base64; anything else (slashes, dots, backslashes,
# whitespace, control characters, percent-escapes) cannot be ours and never reaches the database
KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]+")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def issue(session: AsyncSession, channel_id: uuid.UUID) -> str:
    key = new_key()
    session.add(StreamKey(channel_id=channel_id, stream_key=key, key_hash=hash_key(key)))
    await session.flush()
    return key


async def current(session: AsyncSession, channel_id: uuid.UUID) -> str:
    row = await session.get(StreamKey, channel_id)
    if row is None:  # a channel always gets one at creation; heal rather than fail if not
        return await issue(session, channel_id)
    return row.stream_key


async def rotate(session: AsyncSession, channel_id: uuid.UUID) -> str:
    """Replace the key and stage `channel.stream_key_rotated` (without the key) in the same
    transaction; the old key stops authorizing as soon as this commits."""
    key = new_key()
    now = datetime.now(UTC)
    row = await session.get(StreamKey, channel_id, with_for_update=True)
    if row is None:
        row = StreamKey(channel_id=channel_id, stream_key=key, key_hash=hash_key(key))
    row.stream_key, row.key_hash, row.rotated_at = key, hash_key(key), now
    session.add(row)
    await session.flush()
    await stage_event(session, "channel.stream_key_rotated",
                      StreamKeyRotated(channel_id=str(channel_id), rotated_at=now),
                      source=SOURCE, key=str(channel_id))
    return key


def refusal(reason: str) -> IngestAuthorizeReply:
    return IngestAuthorizeReply(allowed=False, reason=reason)


def shape_problem(key: str) -> str | None:
    """Why a presented key cannot be one of ours, or None when its shape is fine."""
    if not key:
        return "missing stream key"
    if len(key) > MAX_KEY_LENGTH or not KEY_SHAPE.fullmatch(key):
        return "malformed stream key"
    return None


async def authorize(session: AsyncSession, key: str) -> IngestAuthorizeReply:
    """The channel a key belongs to, or a refusal. Replies never contain the key."""
    problem = shape_problem(key)
    if problem:
        return refusal(problem)
    digest = hash_key(key)
    row = (await session.exec(select(StreamKey).where(StreamKey.key_hash == digest))).first()
    # the lookup is by hash (its timing says nothing about the key); the final check is constant-time
    if row is None or not (hmac.compare_digest(row.key_hash, digest)
                           and hmac.compare_digest(row.stream_key.encode(), key.encode())):
        return refusal("unknown stream key")
    channel = await session.get(Channel, row.channel_id)
    if channel is not None and (channel.provider or "local") != "local":
        # its video goes to the hosted provider; the local key is dormant until it switches back
        return refusal("channel streams through a hosted provider")
    return IngestAuthorizeReply(allowed=True, channel_id=str(row.channel_id))
