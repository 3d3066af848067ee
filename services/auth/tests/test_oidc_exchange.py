"""The ID token exchange in-process, against the real provider (tests/oidc/) for discovery and
keys: each refused token differs from an accepted one by the one thing checked."""

import time
import uuid

import jwt
import pytest
from auth_service.config import OidcProvider
from cryptography.hazmat.primitives.asymmetric import rsa
from devstack.oidc import TestOidcProvider


@pytest.fixture(scope="module")
def provider():
    with TestOidcProvider(["http://127.0.0.1:9/unused"]) as p:
        yield p


@pytest.fixture
async def oidc_client(app_client, provider):
    return await app_client(oidc_providers={"test": OidcProvider(**provider.settings_entry())})


def _token(provider, key=None, alg="RS256", **overrides) -> str:
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": provider.client_id, "sub": f"s{uuid.uuid4().hex}",
              "iat": now, "exp": now + 300, "email": f"{uuid.uuid4().hex}@example.com",
              "email_verified": True} | overrides
    return jwt.encode(claims, key or provider.private_key, algorithm=alg, headers={"kid": provider.kid})


async def test_exchange_accepts_the_providers_token_and_refuses_each_defect(oidc_client, provider, assert_problem):
    r = await oidc_client.post("/api/auth/oidc/test/exchange", json={"idToken": _token(provider)})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["onboarded"] is False
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for case, token in {
        "audience": _token(provider, aud="someone-else"),
        "issuer": _token(provider, iss="https://other.example"),
        "expired": _token(provider, iat=now - 7200, exp=now - 3600),
        "unpublished key": _token(provider, key=other_key),
        "alg none": jwt.encode({"iss": provider.issuer, "aud": provider.client_id, "sub": "x", "iat": now,
                                "exp": now + 300}, None, algorithm="none"),
        "alg not pinned": _token(provider, alg="RS512"),
        "no sub": jwt.encode({"iss": provider.issuer, "aud": provider.client_id, "iat": now, "exp": now + 300},
                             provider.private_key, algorithm="RS256", headers={"kid": provider.kid}),
    }.items():
        body = assert_problem(await oidc_client.post("/api/auth/oidc/test/exchange", json={"idToken": token}), 401)
        assert "Traceback" not in body["detail"], case


async def test_unknown_provider_and_missing_webhook_secret_are_404(oidc_client, assert_problem):
    assert_problem(await oidc_client.post("/api/auth/oidc/nosuch/exchange", json={"idToken": "a.b.c"}), 404)
    assert_problem(await oidc_client.post("/api/auth/oidc/test/webhook", content=b"{}"), 404)
