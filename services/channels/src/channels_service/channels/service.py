"""Channels: creation, lookup, edits and the directory; every change others must know about is
staged in the outbox in the same transaction."""

import re
import secrets
import unicodedata
import uuid
from datetime import datetime

from sqlalchemy import func, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events import channels as events
from servicekit.outbox import stage_event
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem
from servicekit.storage import ObjectStore

from channels_service.channels import media
from channels_service.channels.models import Channel, ChannelCreate, ChannelPublic, ChannelUpdate
from channels_service.config import Settings
from channels_service.profiles import service as profiles
from channels_service.profiles.models import CachedProfile
from channels_service.schemas import SLUG_RE, dedupe, escape_like, parse_uuid

SOURCE = "channels"
# the advisory lock space of channel owners (pg_advisory_xact_lock(int, int): this, hashtext(owner))
OWNER_LOCK_SPACE = 0x6F776E72  # "ownr"


def derive_slug(name: str) -> str:
    """'Café Live!' -> 'cafe-live': ASCII-folded, lower-case, non-alphanumerics -> '-', trimmed.
    Too short (e.g. a name without Latin letters) gets a random suffix."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:40].strip("-")
    if len(slug) < 3 or parse_uuid(slug) is not None:
        slug = f"{slug or 'channel'}-{secrets.token_hex(3)}"[-40:].strip("-")
    return slug


async def get(session: AsyncSession, channel_id: str | uuid.UUID) -> Channel | None:
    cid = parse_uuid(channel_id)
    return await session.get(Channel, cid) if cid is not None else None


async def get_or_raise(session: AsyncSession, channel_id: str | uuid.UUID, *, lock: bool = False) -> Channel:
    cid = parse_uuid(channel_id)
    channel = None
    if cid is not None:
        channel = await session.get(Channel, cid, with_for_update=lock or None)
    if channel is None:
        raise Problem(404, "No such channel.")
    return channel


async def get_by_slug_or_id(session: AsyncSession, ref: str) -> Channel:
    channel = None
    if re.fullmatch(SLUG_RE, ref):  # anything else cannot be a slug (and may hold bytes PostgreSQL refuses)
        channel = (await session.exec(select(Channel).where(Channel.slug == ref))).first()
    if channel is None:
        channel = await get(session, ref)
    if channel is None:
        raise Problem(404, "No such channel.")
    return channel


def require_owner(channel: Channel, user_id: uuid.UUID, action: str = "do this") -> None:
    if channel.owner_id != user_id:
        raise Problem(403, f"Only the channel's owner can {action}.")


async def to_public(session: AsyncSession, channel: Channel) -> ChannelPublic:
    return ChannelPublic.of(channel, profiles.summary(channel.owner_id,
                                                      await profiles.get(session, channel.owner_id)))


def payload(channel: Channel) -> events.Channel:
    return events.Channel(id=str(channel.id), slug=channel.slug, name=channel.name,
                          description=channel.description, category=channel.category,
                          tags=list(channel.tags or []), avatar=channel.avatar, banner=channel.banner,
                          is_public=channel.is_public, owner_id=str(channel.owner_id))


async def stage_channel_event(session: AsyncSession, event_type: str, channel: Channel) -> None:
    await stage_event(session, event_type, payload(channel), source=SOURCE, key=str(channel.id))


def _slug_taken() -> Problem:
    return Problem(409, "That slug is already taken.",
                   errors=[{"field": "slug", "message": "slug already taken", "type": "conflict"}])


async def _slug_owner(session: AsyncSession, slug: str) -> uuid.UUID | None:
    return (await session.exec(select(Channel.id).where(Channel.slug == slug))).first()


async def _lock_owner(session: AsyncSession, owner_id: uuid.UUID) -> None:
    """Serialise one owner's channel creations until the transaction ends, so two concurrent
    creates cannot both pass the limit check (the unique index no longer does it)."""
    await session.exec(text("SELECT pg_advisory_xact_lock(:space, hashtext(:owner))")
                       .bindparams(space=OWNER_LOCK_SPACE, owner=str(owner_id)))


async def count_owned(session: AsyncSession, owner_id: uuid.UUID) -> int:
    return (await session.exec(select(func.count()).select_from(Channel)
                               .where(Channel.owner_id == owner_id))).one()


def _limit_reached(limit: int) -> Problem:
    return Problem(409, f"You already have {limit} channels, the most one account may own.",
                   errors=[{"field": None, "message": f"at most {limit} channels per user",
                            "type": "channel_limit"}])


async def create(session: AsyncSession, owner_id: uuid.UUID, owner_username: str | None,
                 data: ChannelCreate, *, max_per_owner: int) -> Channel:
    """Insert a channel and stage `channel.created`; 409 if the owner already has `max_per_owner`
    channels or the slug is taken. The caller adds the stream key and filters in the same
    transaction."""
    await _lock_owner(session, owner_id)
    if await count_owned(session, owner_id) >= max_per_owner:
        raise _limit_reached(max_per_owner)
    slug = data.slug or derive_slug(data.name)
    if await _slug_owner(session, slug):
        raise _slug_taken()
    channel = Channel(owner_id=owner_id, slug=slug, name=data.name, description=data.description,
                      category=data.category, tags=_tags(data.tags), is_public=data.is_public)
    session.add(channel)
    try:
        await session.flush()
    except IntegrityError:  # lost a race with a concurrent create of the same slug
        await session.rollback()
        raise _slug_taken() from None
    await session.refresh(channel)
    await profiles.seed_from_token(session, owner_id, owner_username)
    await stage_channel_event(session, "channel.created", channel)
    return channel


def _tags(tags: list[str] | None) -> list[str]:
    return dedupe(list(tags or []))


def _own_media_url(settings: Settings, url: str, field: str) -> str:
    base = settings.media_base_url.rstrip("/") + "/"
    if (not url.startswith(base) or ".." in url or any(c in url for c in "\\?#\"'<> ")
            or any(ord(c) < 32 or ord(c) == 127 for c in url)):
        raise Problem(422, "The request is not valid.", errors=[{
            "field": field, "message": f"must be an image uploaded to this platform (a URL under {base})",
            "type": "value_error"}])
    return url


async def update(session: AsyncSession, settings: Settings, channel: Channel,
                 changes: ChannelUpdate, store: ObjectStore) -> Channel:
    values = changes.model_dump(exclude_unset=True)
    values.pop("provider", None)  # providers.switch: it calls the provider's API
    for field in ("avatar", "banner"):
        if values.get(field) is not None and values[field] != getattr(channel, field):
            values[field] = await media.take_image_or_422(
                session, store, channel.id, field, _own_media_url(settings, values[field], field))
    if "tags" in values:
        values["tags"] = _tags(values["tags"])
    if "slug" in values and values["slug"] != channel.slug:
        taken_by = await _slug_owner(session, values["slug"])
        if taken_by and taken_by != channel.id:
            raise _slug_taken()
    changed = {k: v for k, v in values.items() if getattr(channel, k) != v}
    if not changed:
        return channel
    for field, value in changed.items():
        setattr(channel, field, value)
    session.add(channel)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _slug_taken() from None
    await session.refresh(channel)
    await stage_channel_event(session, "channel.updated", channel)
    return channel


async def set_banner(session: AsyncSession, channel: Channel, url: str) -> Channel:
    channel.banner = url
    session.add(channel)
    await session.flush()
    await session.refresh(channel)
    await stage_channel_event(session, "channel.updated", channel)
    return channel


def owner_filter(owner: str | None, viewer_id: uuid.UUID | None) -> uuid.UUID | None:
    """`?owner=` as a user id: `me` is the caller, who must then be signed in."""
    if owner is None:
        return None
    if owner == "me":
        if viewer_id is None:
            raise Problem(401, "Sign in to list your own channels.",
                          headers={"WWW-Authenticate": "Bearer"})
        return viewer_id
    return uuid.UUID(owner)  # the route's pattern admits nothing else


def _bad_cursor() -> Problem:
    return Problem(400, "The cursor is not valid; start again without it.")


async def directory(session: AsyncSession, *, viewer_id: uuid.UUID | None, live: bool | None,
                    category: str | None, q: str | None, owner_id: uuid.UUID | None, limit: int,
                    cursor: str | None) -> tuple[list[ChannelPublic], str | None]:
    """Public channels (plus the caller's own unlisted ones), live first by viewer count, then
    newest; keyset-paginated on (is_live, viewer_count, created_at, id), all descending."""
    stmt = select(Channel, CachedProfile).outerjoin(CachedProfile,
                                                    col(CachedProfile.user_id) == Channel.owner_id)
    visible = col(Channel.is_public)
    if viewer_id is not None:
        visible = or_(visible, Channel.owner_id == viewer_id)
    stmt = stmt.where(visible)
    if live is not None:
        stmt = stmt.where(Channel.is_live == live)
    if category:
        stmt = stmt.where(Channel.category == category)
    if owner_id is not None:
        stmt = stmt.where(Channel.owner_id == owner_id)
    if q and q.strip():
        pattern = f"%{escape_like(q.strip())}%"
        stmt = stmt.where(or_(col(Channel.name).ilike(pattern, escape="\\"),
                              col(Channel.slug).ilike(pattern, escape="\\"),
                              col(Channel.description).ilike(pattern, escape="\\")))
    after = decode_cursor(cursor)
    if after:
        try:
            key = (bool(after["l"]), int(after["v"]), datetime.fromisoformat(after["t"]),
                   uuid.UUID(after["id"]))
        except (KeyError, ValueError, TypeError):
            raise _bad_cursor() from None
        stmt = stmt.where(tuple_(Channel.is_live, Channel.viewer_count, Channel.created_at, Channel.id) < key)
    stmt = stmt.order_by(col(Channel.is_live).desc(), col(Channel.viewer_count).desc(),
                         col(Channel.created_at).desc(), col(Channel.id).desc()).limit(limit + 1)
    rows = (await session.exec(stmt)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        next_cursor = encode_cursor({"l": last.is_live, "v": last.viewer_count,
                                     "t": last.created_at.isoformat(), "id": str(last.id)})
    return [ChannelPublic.of(c, profiles.summary(c.owner_id, p)) for c, p in rows], next_cursor
