"""Access-token verification: JWKS-backed, `kid` aware, algorithm pinned.

The token's header is never trusted to pick the algorithm: only the configured algorithms are
accepted (EdDSA by default), so `alg: none` and HMAC-with-the-public-key tricks fail. Keys are
cached; an unknown `kid` triggers at most one JWKS refetch per cool-down, so garbage tokens cannot
turn the verifier into a JWKS flood.

A slow or failing JWKS never holds requests up: stale keys are refreshed in the background while
requests go on with the cached ones; only a request whose `kid` is unknown waits, for one shared
refresh bounded by `fetch_timeout_seconds`; a failed refresh backs off (doubling from the cool-down
up to `max_backoff_seconds`) before the next one.
"""

from __future__ import annotations

import asyncio
import logging
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
log = logging.getLogger("servicekit.security")


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
                 refetch_cooldown_seconds: float = 10, leeway_seconds: float = 5,
                 fetch_timeout_seconds: float = 3.0, max_backoff_seconds: float = 300):
        if not algorithms or "none" in {a.lower() for a in algorithms}:
            raise ValueError("pin at least one real signature algorithm")
        self._fetch = fetch_jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.cache_seconds = cache_seconds
        self.cooldown = refetch_cooldown_seconds
        self.leeway = leeway_seconds
        self.fetch_timeout = fetch_timeout_seconds
        self.max_backoff = max_backoff_seconds
        self._keys: dict[str, PyJWK] = {}
        # "never": monotonic() may be small right after boot
        self._fetched_at = float("-inf")  # last success
        self._attempted_at = float("-inf")  # last attempt: the unknown-kid cool-down counts from it
        self._retry_at = float("-inf")  # after failures: no attempt before this
        self._failures = 0
        self._refresh: asyncio.Task | None = None  # the one refresh in flight, shared by everyone

    def _start_refresh(self) -> asyncio.Task:
        if self._refresh is None or self._refresh.done():
            self._attempted_at = time.monotonic()
            self._refresh = asyncio.create_task(self._fetch_keys(), name="jwks-refresh")
        return self._refresh

    async def _fetch_keys(self) -> None:
        try:
            doc = await asyncio.wait_for(self._fetch(), self.fetch_timeout)
        except Exception as exc:
            self._failures += 1
            backoff = min(self.cooldown * 2 ** (self._failures - 1), self.max_backoff)
            self._retry_at = time.monotonic() + backoff
            log.warning("JWKS refresh failed; serving the cached keys",
                        extra={"error": type(exc).__name__, "cachedKeys": len(self._keys),
                               "retryInSeconds": backoff})
            return
        keys = {}
        for jwk in doc.get("keys", []):
            if "kid" in jwk and jwk.get("use", "sig") == "sig":
                try:
                    keys[jwk["kid"]] = PyJWK(jwk)
                except jwt.PyJWTError:
                    continue
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._failures = 0
        self._retry_at = float("-inf")

    async def _wait_for_refresh(self) -> None:
        try:
            # shielded: a waiter giving up does not cancel the refresh others share
            await asyncio.wait_for(asyncio.shield(self._start_refresh()), self.fetch_timeout)
        except TimeoutError:
            pass

    async def key_for(self, kid: str) -> PyJWK | None:
        now = time.monotonic()
        may_fetch = now >= self._retry_at
        if not self._keys:
            # nothing to serve yet: wait for the keys (once per backoff when the JWKS is down)
            if may_fetch:
                await self._wait_for_refresh()
            if not self._keys:
                raise InvalidToken("signing keys unavailable")
        elif now - self._fetched_at >= self.cache_seconds and may_fetch:
            self._start_refresh()  # in the background: this request goes on with the cached keys
        key = self._keys.get(kid)
        if key is None and may_fetch and now - self._attempted_at >= self.cooldown:
            await self._wait_for_refresh()  # a new signing key: one bounded, shared refresh
            key = self._keys.get(kid)
        return key

    async def settle(self) -> None:
        """Wait for a background refresh in flight (tests; shutdown)."""
        if self._refresh is not None:
            await asyncio.gather(self._refresh, return_exceptions=True)

    async def aclose(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)

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
