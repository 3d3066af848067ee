"""A channel's avatar and banner are objects of its own in the store.

A channel may take an image uploaded elsewhere on the platform (the editor's "use my profile
picture" takes the owner's avatar); it gets a copy under its own prefix, so that every stored
image has one owner whose rows alone say whether it is still used: auth sweeps `avatars/` by the
users' rows, channels sweeps `banners/` and `channel-avatars/` by the channels' rows, and neither
deletes what the other still shows. Rows written before copies existed are copied by the
retention pass (`adopt_foreign_images`), well inside auth's grace period.
"""

from __future__ import annotations

import logging
import uuid

from servicekit.problems import Problem
from servicekit.retention import UnreferencedObjects, keys_by_owner, lock_object_key
from servicekit.storage import ObjectStore
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from channels_service.config import Settings

log = logging.getLogger("channels.media")

# where each field's own copies live (`<prefix>/<channel id>/<digest>.<ext>`)
OWN_PREFIX = {"avatar": "channel-avatars", "banner": "banners"}
# images a channel may take: what the upload endpoints store (never a VOD or a thumbnail)
IMAGE_PREFIXES = ("avatars", "banners", "channel-avatars")


class ForeignImage(ValueError):
    """The URL names no stored image a channel may take."""


def own_key(channel_id, field: str, key: str) -> str:
    return f"{OWN_PREFIX[field]}/{channel_id}/{key.rsplit('/', 1)[-1]}"


async def take_image(session: AsyncSession, store: ObjectStore, channel_id, field: str, url: str) -> str:
    """The URL `field` should hold for `url`: itself when it is the channel's own, else the URL of
    a copy under the channel's prefix. Raises ForeignImage when there is nothing to copy."""
    key = store.key_of(url)
    if key is None or key.split("/", 1)[0] not in IMAGE_PREFIXES:
        raise ForeignImage(url)
    target = own_key(channel_id, field, key)
    if key == target:
        return url
    # the copy is referenced by this transaction's commit: the sweep must not take it meanwhile
    await lock_object_key(session, target)
    try:
        return await store.copy(key, target)
    except FileNotFoundError:
        raise ForeignImage(url) from None


async def take_image_or_422(session, store, channel_id, field: str, url: str) -> str:
    try:
        return await take_image(session, store, channel_id, field, url)
    except ForeignImage:
        raise Problem(422, "The request is not valid.", errors=[{
            "field": field, "message": "must be an image uploaded to this platform "
            "(an avatar or banner URL under the media base)", "type": "value_error"}]) from None


async def adopt_foreign_images(db_of, store_of) -> int:
    """Copy the images channels still show from another owner's prefix; returns how many
    channels changed. An image already gone is cleared (it showed nothing)."""
    from channels_service.channels.models import Channel
    from channels_service.channels.service import stage_channel_event

    db, store = db_of(), store_of()
    async with db.session() as session:
        rows = (await session.exec(text(
            "SELECT id, avatar, banner FROM channels WHERE "
            "(avatar IS NOT NULL AND avatar NOT LIKE '%/channel-avatars/' || id || '/%') OR "
            "(banner IS NOT NULL AND banner NOT LIKE '%/banners/' || id || '/%')"))).all()
    changed = 0
    for row in rows:
        async with db.session() as session:
            channel = await session.get(Channel, row.id, with_for_update=True)
            if channel is None:
                continue
            updates = {}
            for field in OWN_PREFIX:
                url = getattr(channel, field)
                if url is None or store.key_of(url) is None:
                    continue  # not one of this store's URLs: nothing of ours to keep alive
                try:
                    taken = await take_image(session, store, channel.id, field, url)
                except ForeignImage:
                    if store.key_of(url).split("/", 1)[0] not in IMAGE_PREFIXES:
                        continue
                    taken = None
                    log.warning("channel image gone; cleared", extra={"channelId": str(channel.id), "field": field})
                if taken != url:
                    updates[field] = taken
            if updates:
                for field, value in updates.items():
                    setattr(channel, field, value)
                session.add(channel)
                await session.flush()
                await session.refresh(channel)
                await stage_channel_event(session, "channel.updated", channel)
                changed += 1
            await session.commit()
    return changed


async def image_references(session, keys: list[str]) -> set[str]:
    """Which of the `<prefix>/<channel id>/...` keys their channel's row shows (by key, not by the
    URL's base: a changed MEDIA_BASE_URL must not make every image look unreferenced)."""
    owners = keys_by_owner(keys)
    if not owners:
        return set()
    rows = (await session.execute(text("SELECT CAST(id AS text), avatar, banner FROM channels WHERE id = ANY(:ids)"),
                                  {"ids": [uuid.UUID(c) for c in owners]})).all()
    return {key for cid, avatar, banner in rows for key in owners[cid]
            if any(url and url.endswith("/" + key) for url in (avatar, banner))}


def image_sweep(settings: Settings, runtime) -> UnreferencedObjects:
    return UnreferencedObjects(lambda: runtime.db, lambda: runtime.store, list(OWN_PREFIX.values()),
                               image_references, grace_seconds=settings.unreferenced_uploads_grace_days * 86400,
                               name="channel_images")
