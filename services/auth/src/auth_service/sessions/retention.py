"""Retention of auth's own history (issue 14, item 10), run by the runtime's retention job."""

import uuid

from servicekit.retention import Prune, UnreferencedObjects, keys_by_owner
from sqlalchemy import text

from auth_service.config import Settings

AVATARS = "avatars"


def prunes(settings: Settings) -> list[Prune]:
    return [
        # refused anyway once expired; revoked and rotated ones expire like the rest
        Prune("refresh_tokens", "expires_at < now() - make_interval(secs => :secs)",
              lambda: {"secs": settings.refresh_token_retention_days * 86400}),
    ]


async def avatar_references(session, keys: list[str]) -> set[str]:
    """Which of the `avatars/<user id>/<digest>.<ext>` keys their user's row shows. The URL's
    base is not compared: a changed MEDIA_BASE_URL must not make every avatar look unreferenced."""
    owners = keys_by_owner(keys)
    if not owners:
        return set()
    rows = (await session.execute(text("SELECT CAST(id AS text), avatar FROM users WHERE id = ANY(:ids)"),
                                  {"ids": [uuid.UUID(u) for u in owners]})).all()
    return {key for user_id, avatar in rows if avatar for key in owners[user_id]
            if avatar.endswith("/" + key)}


def avatar_sweep(settings: Settings, runtime) -> UnreferencedObjects:
    return UnreferencedObjects(lambda: runtime.db, lambda: runtime.store, [AVATARS], avatar_references,
                               grace_seconds=settings.unreferenced_uploads_grace_days * 86400,
                               name="avatars")
