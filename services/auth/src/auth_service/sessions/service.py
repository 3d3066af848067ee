"""Sessions: access tokens (short JWTs) and refresh tokens (opaque, rotated on every use).

Presenting a refresh token that was already rotated means it was copied: the whole family (every
token descended from the same login) is revoked and the caller must log in again.
"""

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.problems import Problem

from auth_service.config import Settings
from auth_service.keys import service as keys
from auth_service.sessions.models import RefreshToken, TokenPair
from auth_service.users.models import User

INVALID_REFRESH = "The refresh token is invalid or expired; log in again."


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_pair(session: AsyncSession, settings: Settings, user: User,
                     family_id: uuid.UUID | None = None) -> TokenPair:
    now = datetime.now(UTC)
    key = await keys.active_key(session, settings)
    access = keys.sign(settings, key, {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": str(user.id),
        "username": user.username, "typ": "access", "jti": secrets.token_urlsafe(12),
        "iat": int(now.timestamp()), "exp": int(now.timestamp()) + settings.access_token_ttl_seconds,
    })
    refresh = secrets.token_urlsafe(32)
    session.add(RefreshToken(token_hash=_hash(refresh), family_id=family_id or uuid.uuid4(), user_id=user.id,
                             expires_at=now + timedelta(days=settings.refresh_token_ttl_days)))
    await session.flush()
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=settings.access_token_ttl_seconds)


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(update(RefreshToken).where(col(RefreshToken.family_id) == family_id,
                                                     col(RefreshToken.revoked_at).is_(None))
                          .values(revoked_at=datetime.now(UTC)))


async def rotate(session: AsyncSession, settings: Settings, token: str) -> tuple[User, TokenPair]:
    """Exchange a refresh token for a new pair; reuse of a rotated token revokes its family."""
    row = (await session.exec(select(RefreshToken).where(RefreshToken.token_hash == _hash(token))
                              .with_for_update())).first()
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Problem(401, INVALID_REFRESH)
    if row.used_at is not None:
        await _revoke_family(session, row.family_id)
        await session.commit()  # the revocation must stick even though this request fails
        raise Problem(401, INVALID_REFRESH)
    row.used_at = now
    session.add(row)
    user = await session.get(User, row.user_id)
    if user is None:
        raise Problem(401, INVALID_REFRESH)
    pair = await issue_pair(session, settings, user, family_id=row.family_id)
    return user, pair


async def logout(session: AsyncSession, token: str) -> None:
    row = (await session.exec(select(RefreshToken).where(RefreshToken.token_hash == _hash(token)))).first()
    if row is not None:
        await _revoke_family(session, row.family_id)
