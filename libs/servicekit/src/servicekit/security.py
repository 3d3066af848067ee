"""Access-token verification: JWKS-backed, `kid` aware, algorithm pinned.

The token's header is never trusted to pick the algorithm: only the configured algorithms are
accepted (EdDSA by default), so `alg: none` and HMAC-with-the-public-key tricks fail. Keys are
cached; an unknown `kid` triggers at most one JWKS refetch per cool-down, so garbage tokens cannot
turn the verifier into a JWKS flood.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request
from jwt import PyJWK

from servicekit.problems import Problem

KeyFetcher = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Principal:
    id: str
    username: str | None
    claims: dict[str, Any]


class InvalidToken(Exception):
    pass


def remote_jwks(url: str, timeout: float = 3.0) -> KeyFetcher:
    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.get(url)
            r.raise_for_status()
            return r.json()

    return fetch


class JwtVerifier:
    def __init__(self, fetch_jwks: KeyFetcher, *, issuer: str, audience: str,
                 algorithms: tuple[str, ...] = ("EdDSA",), cache_seconds: float = 300,
                 refetch_cooldown_seconds: float = 10, leeway_seconds: float = 5):
        if not algorithms or "none" in {a.lower() for a in algorithms}:
            raise ValueError("pin at least one real signature algorithm")
        self._fetch = fetch_jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.cache_seconds = cache_seconds
        self.cooldown = refetch_cooldown_seconds
        self.leeway = leeway_seconds
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")  # never: monotonic() may be small right after boot
        self._lock = asyncio.Lock()

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if (force and age < self.cooldown) or (not force and age < self.cache_seconds):
                return
            doc = await self._fetch()
            keys = {}
            for jwk in doc.get("keys", []):
                if "kid" in jwk and jwk.get("use", "sig") == "sig":
                    try:
                        keys[jwk["kid"]] = PyJWK(jwk)
                    except jwt.PyJWTError:
                        continue
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def key_for(self, kid: str) -> PyJWK | None:
        try:
            await self._refresh(force=False)
            if kid not in self._keys:
                await self._refresh(force=True)
        except Exception as exc:
            if not self._keys:
                raise InvalidToken("signing keys unavailable") from exc
        return self._keys.get(kid)

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") not in self.algorithms:
            raise InvalidToken("algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        key = await self.key_for(kid)
        if key is None:
            raise InvalidToken("unknown key id")
        try:
            return jwt.decode(token, key=key, algorithms=list(self.algorithms), audience=self.audience,
                              issuer=self.issuer, leeway=self.leeway,
                              options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "Use 'Authorization: Bearer <accessToken>'.",
                      headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def _principal(request: Request, required: bool) -> Principal | None:
    token = bearer_token(request)
    if token is None:
        if required:
            raise Problem(401, "Sign in to do this.", headers={"WWW-Authenticate": "Bearer"})
        return None
    verifier: JwtVerifier = request.app.state.jwt_verifier
    try:
        claims = await verifier.verify(token)
    except InvalidToken:
        raise Problem(401, "The access token is invalid or expired.",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    if claims.get("typ") not in (None, "access"):
        raise Problem(401, "The access token is invalid or expired.")
    return Principal(id=str(claims["sub"]), username=claims.get("username"), claims=claims)


async def require_user(request: Request) -> Principal:
    principal = await _principal(request, required=True)
    assert principal is not None
    return principal


async def optional_user(request: Request) -> Principal | None:
    return await _principal(request, required=False)


CurrentUser = Annotated[Principal, Depends(require_user)]
MaybeUser = Annotated[Principal | None, Depends(optional_user)]
