"""Signing keys: create, rotate, publish. Keys live in the database so every replica signs and
verifies with the same set; private keys are encrypted at rest when a passphrase is configured."""

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import text
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from auth_service.config import Settings
from auth_service.keys.models import SigningKey

ALGORITHM = "EdDSA"


def _passphrase(settings: Settings) -> bytes | None:
    return settings.signing_key_passphrase.get_secret_value().encode() if settings.signing_key_passphrase else None


def new_key(settings: Settings) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    passphrase = _passphrase(settings)
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    kid = secrets.token_urlsafe(12)
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    return SigningKey(kid=kid, private_pem=pem.decode(), public_jwk=jwk)


def load_private(settings: Settings, key: SigningKey) -> Ed25519PrivateKey:
    return serialization.load_pem_private_key(key.private_pem.encode(), password=_passphrase(settings))


def _signing(now: datetime):
    """Keys that may sign at `now`, newest first."""
    return (select(SigningKey)
            .where(col(SigningKey.activates_at) <= now,
                   or_(col(SigningKey.retired_at).is_(None), col(SigningKey.retired_at) > now))
            .order_by(col(SigningKey.activates_at).desc()))


def _pending(now: datetime):
    return select(SigningKey).where(col(SigningKey.activates_at) > now)


async def active_key(session: AsyncSession, settings: Settings) -> SigningKey:
    """The key to sign with; creates the first key, and pre-publishes the next one when due."""
    now = datetime.now(UTC)
    key = (await session.exec(_signing(now))).first()
    due = timedelta(days=settings.signing_key_rotation_days)
    if key is not None and (now - key.activates_at < due
                            or (await session.exec(_pending(now))).first() is not None):
        return key
    # one replica creates the key; the others wait on the lock and then see it
    await session.execute(text("SELECT pg_advisory_xact_lock(724001)"))
    key = (await session.exec(_signing(now))).first()
    if key is None:
        # nothing signs yet (first start): a key no verifier can know of before it exists
        key = await rotate(session, settings, lead_seconds=0)
    elif now - key.activates_at >= due and (await session.exec(_pending(now))).first() is None:
        await rotate(session, settings)  # the current key keeps signing until the next one activates
    await session.commit()
    return key


async def rotate(session: AsyncSession, settings: Settings, *, lead_seconds: float | None = None) -> SigningKey:
    """Publish a new signing key now; it signs after the publish lead, and the keys signing today
    retire at that moment (they stay published until their tokens expire). Verifiers that cached
    the JWKS refetch it when they meet an unknown `kid`, at most once per cool-down; because the key
    is published a lead longer than that cool-down before it signs, none of them ever refuses it."""
    now = datetime.now(UTC)
    lead = settings.signing_key_publish_lead_seconds if lead_seconds is None else lead_seconds
    activates_at = now + timedelta(seconds=lead)
    for old in (await session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None)))).all():
        old.retired_at = max(activates_at, old.activates_at)
        session.add(old)
    key = new_key(settings)
    key.activates_at = activates_at
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key


async def jwks(session: AsyncSession, settings: Settings) -> dict:
    # retired keys stay until the longest-lived token they could have signed has expired
    # (pending keys, not signing yet, are published too: that is their point)
    keep_after = datetime.now(UTC) - timedelta(seconds=settings.access_token_ttl_seconds + 300)
    stmt = select(SigningKey).where(or_(col(SigningKey.retired_at).is_(None),
                                        col(SigningKey.retired_at) > keep_after))
    keys = (await session.exec(stmt.order_by(col(SigningKey.created_at).desc()))).all()
    return {"keys": [k.public_jwk for k in keys]}


def sign(settings: Settings, key: SigningKey, claims: dict) -> str:
    return jwt.encode(claims, load_private(settings, key), algorithm=ALGORITHM, headers={"kid": key.kid})


def rotate_keys_command(settings: Settings) -> int:
    """Publish a new JWT signing key; it signs after the publish lead (old public keys stay
    published until their tokens expire)."""
    from servicekit.db import Database

    async def go() -> SigningKey:
        db = Database(settings.database_url, pool_size=1)
        try:
            async with db.session() as session:
                await session.execute(text("SELECT pg_advisory_xact_lock(724001)"))
                key = await rotate(session, settings)
                await session.commit()
                return key
        finally:
            await db.dispose()

    key = asyncio.run(go())
    print(f"new signing key: {key.kid} (published now, signs from {key.activates_at.isoformat()})")
    return 0
