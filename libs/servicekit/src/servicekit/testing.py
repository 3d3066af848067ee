"""Pytest fixtures every service's tests share (a pytest plugin, registered as ``servicekit``).

Access tokens are minted with a throwaway Ed25519 key that the app under test trusts through its
``jwks=`` argument, as services trust auth's keys in production: ``create_app(settings, jwks=jwks)``
then ``make_user()`` gives a user with a valid bearer token.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from servicekit.problems import PROBLEM_JSON

ISSUER, AUDIENCE = "streamplatform-auth", "streamplatform"


@dataclass
class User:
    """A signed-in user as a test sees it."""

    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def signing_key():
    """(private key, kid) that `jwks` publishes and `mint` signs with."""
    return Ed25519PrivateKey.generate(), secrets.token_urlsafe(8)


@pytest.fixture(scope="session")
def jwks(signing_key):
    """An async JWKS fetcher for `create_app(..., jwks=jwks)`."""
    private, kid = signing_key
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "EdDSA"})

    async def fetch() -> dict:
        return {"keys": [jwk]}

    return fetch


@pytest.fixture(scope="session")
def mint(signing_key):
    """mint(sub, username, **claim overrides) -> a signed access token."""
    private, kid = signing_key

    def _mint(sub: str, username: str | None = None, *, key=None, **overrides) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "username": username, "typ": "access",
                  "iat": now, "exp": now + 900, **overrides}
        return jwt.encode(claims, key or private, algorithm="EdDSA", headers={"kid": kid})

    return _mint


@pytest.fixture
def make_user(mint):
    """make_user(username=None) -> a `User` with a fresh id and a valid token."""
    counter = iter(range(1_000_000))

    def _make(username: str | None = None) -> User:
        uid = str(uuid.uuid4())
        name = username or f"user_{next(counter)}"
        return User(uid, name, mint(uid, name))

    return _make


def poll(what: str, probe: Callable[[], object], timeout: float = 30.0, every: float = 0.25):
    """`probe()` until it returns something truthy (for sync tests that drive a whole stack);
    fails naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s (last: {last!r})")


@pytest.fixture
def eventually():
    """await eventually(async_fn, predicate, timeout): poll until predicate(result) holds."""

    async def _eventually(fn: Callable[[], Awaitable], predicate: Callable = bool, *, timeout: float = 10.0,
                          interval: float = 0.05, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            result = await fn()
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last result: {result!r}")
            await asyncio.sleep(interval)

    return _eventually


@pytest.fixture
def assert_problem():
    """Check an RFC 9457 answer: status, media type, the four members, and `errors` on 422."""

    def _check(response: httpx.Response, status: int) -> dict:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers
        body = response.json()
        assert {"type", "title", "status", "detail"} <= body.keys(), body
        assert body["status"] == status
        assert "Traceback" not in response.text
        if status == 422:
            assert isinstance(body.get("errors"), list) and body["errors"], body
        return body

    return _check


@pytest.fixture
def envelope_receiver():
    """A local Sentry envelope receiver (devstack.envelopes) for `sentry_dsn=receiver.dsn`; the
    error tracking a test started is stopped after it (the SDK is per process)."""
    from devstack.envelopes import EnvelopeReceiver

    from servicekit.errortracking import shutdown_error_tracking

    with EnvelopeReceiver() as receiver:
        try:
            yield receiver
        finally:
            shutdown_error_tracking()
