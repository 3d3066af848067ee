"""External sign-in (OpenID Connect): the authorization code flow with PKCE, ID token checks against
the provider's JWKS, linking provider accounts to platform users, and Clerk's user webhooks.

Unfinished sign-ins, hand-off codes and pending links live in Valkey with a TTL and are taken
with GETDEL, so each is good for exactly one use; confirmed links live in the database.
"""

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from redis.asyncio import Redis
from servicekit.problems import Problem
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from auth_service.config import OidcProvider, Settings
from auth_service.oidc.models import OidcIdentity
from auth_service.users import service as users
from auth_service.users.models import User

LOGIN_PREFIX = "oidc:login:"
HANDOFF_PREFIX = "oidc:handoff:"
LINK_PREFIX = "oidc:link:"
# ID tokens from a provider whose clock is a little ahead are still accepted
LEEWAY_SECONDS = 30
BAD_STATE = "This sign-in is unknown, expired or already finished; start it again."


def provider_or_404(settings: Settings, name: str) -> OidcProvider:
    provider = settings.oidc_providers.get(name)
    if provider is None:
        raise Problem(404, "No such sign-in provider.")
    return provider


def callback_url(settings: Settings, name: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/api/auth/oidc/{name}/callback"


def safe_next(value: str | None) -> str:
    """Only a path on this site: an absolute or protocol-relative URL would make the sign-in an
    open redirect. "" for none (the web client then picks the dashboard or the onboarding)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value \
            or any(ord(c) < 0x20 for c in value):
        return ""
    return value[:500]


# ---- discovery and keys --------------------------------------------------------------------

@dataclass
class _Discovered:
    metadata: dict[str, Any]
    jwks: jwt.PyJWKClient
    fetched_at: float


_discovered: dict[str, _Discovered] = {}
DISCOVERY_TTL_SECONDS = 3600


async def discover(provider: OidcProvider) -> _Discovered:
    cached = _discovered.get(provider.issuer)
    if cached and time.monotonic() - cached.fetched_at < DISCOVERY_TTL_SECONDS:
        return cached
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
            response.raise_for_status()
            metadata = response.json()
    except (httpx.HTTPError, ValueError):
        raise Problem(502, "The sign-in provider did not answer; try again later.") from None
    # a discovery document for another issuer would make every later check meaningless
    if metadata.get("issuer") != provider.issuer:
        raise Problem(502, "The sign-in provider's discovery document names another issuer.")
    # PyJWKClient caches the key set and refetches it once when a token names an unknown kid
    found = _Discovered(metadata, jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=True, timeout=10),
                        time.monotonic())
    _discovered[provider.issuer] = found
    return found


async def verify_id_token(provider: OidcProvider, token: str, *, nonce: str | None = None) -> dict[str, Any]:
    """The token's claims when the provider signed it for this client (issuer, audience, expiry,
    one of the pinned algorithms); 401 otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Problem(401, "The ID token is not a JWT.") from None
    if header.get("alg") not in provider.algorithms:
        raise Problem(401, "The ID token's signing algorithm is not accepted.")
    found = await discover(provider)
    try:
        key = await asyncio.to_thread(found.jwks.get_signing_key_from_jwt, token)
    except jwt.PyJWKClientConnectionError:
        raise Problem(502, "The sign-in provider's keys could not be fetched; try again later.") from None
    except jwt.PyJWTError:
        raise Problem(401, "The ID token was not signed by a key the provider publishes.") from None
    try:
        claims = jwt.decode(token, key.key, algorithms=provider.algorithms, audience=provider.client_id,
                            issuer=provider.issuer, leeway=LEEWAY_SECONDS,
                            options={"require": ["iss", "sub", "aud", "exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise Problem(401, "The ID token has expired.") from None
    except jwt.InvalidAudienceError:
        raise Problem(401, "The ID token was issued for another client.") from None
    except jwt.InvalidIssuerError:
        raise Problem(401, "The ID token was issued by another issuer.") from None
    except jwt.PyJWTError:
        raise Problem(401, "The ID token is not valid.") from None
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise Problem(401, "The ID token does not belong to this sign-in.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"] or len(claims["sub"]) > 255:
        raise Problem(401, "The ID token names no subject.")
    return claims


# ---- the authorization code flow -------------------------------------------------------------

def _pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def start_login(redis: Redis, settings: Settings, name: str, provider: OidcProvider,
                      next_path: str | None) -> str:
    """Remember state, nonce and PKCE verifier; the provider's authorization URL to send the browser to."""
    found = await discover(provider)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    await redis.set(LOGIN_PREFIX + state, json.dumps({"provider": name, "nonce": nonce, "verifier": verifier,
                                                      "next": safe_next(next_path)}),
                    ex=settings.oidc_login_ttl_seconds)
    query = urlencode({"response_type": "code", "client_id": provider.client_id,
                       "redirect_uri": callback_url(settings, name), "scope": provider.scopes,
                       "state": state, "nonce": nonce, "code_challenge": _pkce_challenge(verifier),
                       "code_challenge_method": "S256"})
    endpoint = found.metadata["authorization_endpoint"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


async def finish_login(redis: Redis, settings: Settings, name: str, provider: OidcProvider,
                       state: str, code: str) -> tuple[dict[str, Any], str]:
    """Take the state (once), trade the code for tokens and check the ID token: (claims, next path)."""
    raw = await redis.getdel(LOGIN_PREFIX + state)
    if raw is None:
        raise Problem(400, BAD_STATE)
    pending = json.loads(raw)
    if pending["provider"] != name:
        raise Problem(400, BAD_STATE)
    found = await discover(provider)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                found.metadata["token_endpoint"],
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": callback_url(settings, name), "code_verifier": pending["verifier"]},
                auth=(provider.client_id, provider.client_secret.get_secret_value()))
    except httpx.HTTPError:
        raise Problem(502, "The sign-in provider did not answer; try again later.") from None
    if response.status_code >= 500:
        raise Problem(502, "The sign-in provider failed; try again later.")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200 or not isinstance(body.get("id_token"), str):
        raise Problem(400, "The sign-in provider refused the authorization code; start again.")
    claims = await verify_id_token(provider, body["id_token"], nonce=pending["nonce"])
    return claims, pending["next"]


# ---- users and links -------------------------------------------------------------------------

@dataclass
class SignIn:
    user: User | None = None
    link_token: str | None = None  # set when an existing account must confirm the link first
    email: str | None = None


def _username_base(claims: dict[str, Any]) -> str:
    for raw in (claims.get("preferred_username"), claims.get("nickname"),
                str(claims.get("email") or "").split("@")[0], claims.get("name")):
        name = re.sub(r"[^a-z0-9_]+", "_", str(raw or "").lower()).strip("_")[:18]
        if len(name) >= 3:
            return name
    return "user"


async def _free_username(session: AsyncSession, base: str) -> str:
    candidate = base
    for _ in range(20):
        if (await session.exec(select(User.id).where(User.username == candidate))).first() is None:
            return candidate
        candidate = f"{base}_{secrets.token_hex(3)}"
    raise Problem(409, "No free username could be found; try again.")


async def sign_in(session: AsyncSession, redis: Redis, settings: Settings, name: str,
                  claims: dict[str, Any]) -> SignIn:
    subject = claims["sub"]
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    row = (await session.exec(select(OidcIdentity).where(OidcIdentity.provider == name,
                                                         OidcIdentity.subject == subject))).first()
    if row is not None:
        user = await session.get(User, row.user_id)
        if user is not None:
            return SignIn(user=user)
    existing = await users.find_by_email(session, email) if email else None
    if existing is not None:
        if claims.get("email_verified") is not True:
            raise Problem(409, "An account already uses this e-mail address and the provider has not "
                               "verified it; sign in with that account instead.")
        # the provider vouches for the address, but whoever holds the account must agree before
        # another way in is added to it: the link waits for them to sign in and confirm
        token = secrets.token_urlsafe(32)
        await redis.set(LINK_PREFIX + token, json.dumps({"provider": name, "subject": subject, "email": email,
                                                         "user_id": str(existing.id)}),
                        ex=settings.oidc_link_ttl_seconds)
        return SignIn(link_token=token, email=email)
    display = str(claims.get("name") or "").strip()[:50] or None
    username = await _free_username(session, _username_base(claims))
    if not email:
        # the account needs an address; a reserved domain (RFC 2606) that never delivers
        email = f"{username}.{secrets.token_hex(4)}@{name}.oidc.invalid"
    user = await users.create_external(session, email=email, username=username,
                                       display_name=display or username)
    session.add(OidcIdentity(provider=name, subject=subject, user_id=user.id, email=claims.get("email")))
    await session.flush()
    return SignIn(user=user)


async def confirm_link(session: AsyncSession, redis: Redis, caller_id: str, token: str) -> OidcIdentity:
    raw = await redis.get(LINK_PREFIX + token)
    if raw is None:
        raise Problem(404, "This link request is unknown or expired; sign in with the provider again.")
    pending = json.loads(raw)
    if pending["user_id"] != caller_id:
        raise Problem(403, "This link request is for another account.")
    if not await redis.delete(LINK_PREFIX + token):  # a concurrent confirmation took it
        raise Problem(404, "This link request is unknown or expired; sign in with the provider again.")
    row = (await session.exec(select(OidcIdentity).where(OidcIdentity.provider == pending["provider"],
                                                         OidcIdentity.subject == pending["subject"]))).first()
    if row is None:
        row = OidcIdentity(provider=pending["provider"], subject=pending["subject"],
                           user_id=uuid.UUID(caller_id), email=pending["email"])
    else:
        row.user_id = uuid.UUID(caller_id)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def identities(session: AsyncSession, user_id: str) -> list[OidcIdentity]:
    return list((await session.exec(select(OidcIdentity).where(OidcIdentity.user_id == uuid.UUID(user_id))
                                    .order_by(OidcIdentity.created_at))).all())


async def new_handoff(redis: Redis, settings: Settings, user: User) -> str:
    code = secrets.token_urlsafe(32)
    await redis.set(HANDOFF_PREFIX + code, str(user.id), ex=settings.oidc_handoff_ttl_seconds)
    return code


async def take_handoff(session: AsyncSession, redis: Redis, code: str) -> User:
    raw = await redis.getdel(HANDOFF_PREFIX + code)
    user = await users.get(session, raw.decode() if isinstance(raw, bytes) else raw) if raw else None
    if user is None:
        raise Problem(401, "This sign-in code is unknown, expired or already used; sign in again.")
    return user


# ---- Clerk's user webhooks -------------------------------------------------------------------

async def apply_webhook(session: AsyncSession, name: str, event: dict[str, Any]) -> bool:
    """user.updated refreshes the linked user's profile, user.deleted deletes the linked user;
    True when a linked user was changed."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    subject = data.get("id")
    if not isinstance(subject, str) or event.get("type") not in {"user.updated", "user.deleted"}:
        return False
    row = (await session.exec(select(OidcIdentity).where(OidcIdentity.provider == name,
                                                         OidcIdentity.subject == subject))).first()
    user = await session.get(User, row.user_id) if row else None
    if user is None:
        return False
    if event["type"] == "user.deleted":
        await users.delete(session, user)
        return True
    full = " ".join(str(data.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    display = (full or str(data.get("username") or "").strip())[:50]
    image = data.get("image_url")
    avatar = image if isinstance(image, str) and image.startswith("https://") and len(image) < 1000 else None
    await users.sync_external_profile(session, user, display_name=display or None, avatar=avatar)
    return True
