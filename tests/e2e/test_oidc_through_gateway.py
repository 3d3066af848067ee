"""External sign-in (OpenID Connect) through the gateway, against a real provider (panva's
oidc-provider, tests/oidc/): the browser round trip with PKCE, state and nonce; the ID token
exchange and the tokens it must refuse; linking to an existing account; Clerk's user webhooks."""

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from standardwebhooks.webhooks import Webhook

from .helpers import problem, register

pytestmark = pytest.mark.e2e


def _problem(r: httpx.Response, status: int) -> dict:
    body = problem(r, status)
    assert body["detail"], body
    return body


def _account() -> str:
    return f"oidc{uuid.uuid4().hex[:10]}"


def _to_callback(stack, authorize_url: str, account: str) -> str:
    """Play the browser at the provider (its interaction signs in as `login_hint` at once) until
    it sends the browser back to the gateway's callback; that URL."""
    callback = f"{stack.config.gateway_url}/api/auth/oidc/test/callback"
    url = f"{authorize_url}&{urlencode({'login_hint': account})}"
    with httpx.Client(timeout=10) as browser:  # keeps the provider's cookies
        for _ in range(12):
            r = browser.get(url)
            assert r.status_code in (302, 303), r.text[:500]
            url = urljoin(url, r.headers["location"])
            if url.startswith(callback):
                return url
    raise AssertionError("the provider never redirected to the callback")


def _login(gateway, stack, account: str, next_path: str = "/") -> tuple[httpx.Response, str]:
    r = gateway.get("/api/auth/oidc/test/login", params={"next": next_path})
    assert r.status_code == 302, r.text
    callback = _to_callback(stack, r.headers["location"], account)
    split = urlsplit(callback)
    return gateway.get(f"{split.path}?{split.query}"), callback


def _fragment(location: str) -> dict[str, str]:
    assert location.startswith("/auth/login#"), location
    return {k: v[0] for k, v in parse_qs(location.split("#", 1)[1]).items()}


def _id_token(stack, oidc_provider, account: str) -> str:
    """A real ID token from the provider for the platform's client (the test plays the client)."""
    meta = httpx.get(f"{oidc_provider.issuer}/.well-known/openid-configuration").json()
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = f"{stack.config.gateway_url}/api/auth/oidc/test/callback"
    url = meta["authorization_endpoint"] + "?" + urlencode({
        "response_type": "code", "client_id": oidc_provider.client_id, "redirect_uri": redirect,
        "scope": "openid email profile", "state": "s", "nonce": "n", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(_to_callback(stack, url, account)).query)["code"][0]
    r = httpx.post(meta["token_endpoint"], data={"grant_type": "authorization_code", "code": code,
                                                  "redirect_uri": redirect, "code_verifier": verifier},
                   auth=(oidc_provider.client_id, oidc_provider.client_secret))
    assert r.status_code == 200, r.text
    return r.json()["id_token"]


def _signed(oidc_provider, key=None, headers=None, **overrides) -> str:
    """A token signed with the provider's own published key (unless `key`), valid unless overridden."""
    now = int(time.time())
    claims = {"iss": oidc_provider.issuer, "aud": oidc_provider.client_id, "sub": _account(),
              "iat": now, "exp": now + 300, "email": f"{uuid.uuid4().hex}@example.com",
              "email_verified": True} | overrides
    return jwt.encode(claims, key or oidc_provider.private_key, algorithm="RS256",
                      headers={"kid": oidc_provider.kid} | (headers or {}))


def test_providers_are_listed_without_secrets(gateway, oidc_provider):
    r = gateway.get("/api/auth/providers")
    assert r.status_code == 200
    assert r.json()["providers"] == [{"name": "test", "displayName": "Test OIDC",
                                      "loginUrl": "/api/auth/oidc/test/login"}]
    assert oidc_provider.client_secret not in r.text and oidc_provider.webhook_secret not in r.text


def test_login_round_trip_hands_over_a_one_time_code(gateway, stack):
    account = _account()
    r = gateway.get("/api/auth/oidc/test/login", params={"next": "/settings"})
    assert r.status_code == 302
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0] and query["client_id"] == ["streamplatform"]

    r, callback = _login(gateway, stack, account, "/settings")
    assert r.status_code == 302, r.text
    fragment = _fragment(r.headers["location"])
    assert fragment["next"] == "/settings"
    assert "accessToken" not in r.headers["location"] and "code=" not in r.headers["location"]

    r = gateway.post("/api/auth/oidc/complete", json={"code": fragment["oidc"]})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["user"]["username"] == account and result["user"]["onboarded"] is False
    assert result["user"]["email"] == f"{account}@example.com"
    me = gateway.get("/api/auth/user", headers={"Authorization": f"Bearer {result['accessToken']}"})
    assert me.status_code == 200 and me.json()["id"] == result["user"]["id"]

    # the code is good once; the provider's answer (state) too
    _problem(gateway.post("/api/auth/oidc/complete", json={"code": fragment["oidc"]}), 401)
    split = urlsplit(callback)
    _problem(gateway.get(f"{split.path}?{split.query}"), 400)

    # signing in again is the same user
    r, _ = _login(gateway, stack, account)
    again = gateway.post("/api/auth/oidc/complete", json={"code": _fragment(r.headers["location"])["oidc"]})
    assert again.status_code == 200 and again.json()["user"]["id"] == result["user"]["id"]


def test_callback_refuses_bad_answers(gateway):
    _problem(gateway.get("/api/auth/oidc/test/callback", params={"state": "forged", "code": "x"}), 400)
    _problem(gateway.get("/api/auth/oidc/test/callback"), 400)
    _problem(gateway.get("/api/auth/oidc/test/callback", params={"error": "access_denied", "state": "x"}), 400)
    _problem(gateway.get("/api/auth/oidc/nosuch/login"), 404)
    # an absolute `next` would make the sign-in an open redirect: it becomes "/"
    r = gateway.get("/api/auth/oidc/test/login", params={"next": "//evil.example/"})
    assert r.status_code == 302


def test_exchange_trades_a_provider_id_token_for_the_platform_pair(gateway, stack, oidc_provider):
    account = _account()
    token = _id_token(stack, oidc_provider, account)
    r = gateway.post("/api/auth/oidc/test/exchange", json={"idToken": token})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["user"]["username"] == account and first["refreshToken"]
    r = gateway.post("/api/auth/oidc/test/exchange", json={"idToken": _signed(oidc_provider, sub=account)})
    assert r.status_code == 200 and r.json()["user"]["id"] == first["user"]["id"]


def test_exchange_refuses_tokens_not_meant_for_this_client(gateway, oidc_provider):
    assert gateway.post("/api/auth/oidc/test/exchange",
                        json={"idToken": _signed(oidc_provider)}).status_code == 200  # the control
    now = int(time.time())
    cases = {
        "audience": _signed(oidc_provider, aud="another-client"),
        "issuer": _signed(oidc_provider, iss="http://127.0.0.1:1/other"),
        "expired": _signed(oidc_provider, iat=now - 7200, exp=now - 3600),
        "unpublished key": _signed(oidc_provider, key=rsa.generate_private_key(public_exponent=65537,
                                                                               key_size=2048)),
        "alg none": jwt.encode({"iss": oidc_provider.issuer, "aud": oidc_provider.client_id, "sub": "x",
                                "iat": now, "exp": now + 300}, None, algorithm="none"),
        "not a jwt": "not.a.jwt",
    }
    for case, token in cases.items():
        body = _problem(gateway.post("/api/auth/oidc/test/exchange", json={"idToken": token}), 401)
        assert body["detail"], case
    # HS256 keyed with the provider's public key: the classic algorithm confusion
    public_pem = oidc_provider.private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": oidc_provider.kid}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps({"iss": oidc_provider.issuer, "aud": oidc_provider.client_id,
                                                   "sub": "x", "iat": now, "exp": now + 300}).encode()).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(public_pem, forged + b"." + payload, "sha256").digest()).rstrip(b"=")
    _problem(gateway.post("/api/auth/oidc/test/exchange",
                          json={"idToken": (forged + b"." + payload + b"." + sig).decode()}), 401)
    _problem(gateway.post("/api/auth/oidc/test/exchange", json={}), 422)


def test_verified_email_links_only_after_the_owner_confirms(gateway, stack, oidc_provider):
    account = _account()
    owner = register(gateway, "pw", email=f"{account}@example.com")
    stranger = register(gateway, "pw", email=f"{_account()}@example.com")

    body = _problem(gateway.post("/api/auth/oidc/test/exchange",
                                 json={"idToken": _id_token(stack, oidc_provider, account)}), 409)
    link = body["linkToken"]
    assert "accessToken" not in body
    # the browser flow ends the same way, with the link token in the fragment
    r, _ = _login(gateway, stack, account)
    assert r.status_code == 302 and _fragment(r.headers["location"])["oidcLink"]

    _problem(gateway.post("/api/auth/oidc/link", json={"linkToken": link}), 401)
    _problem(gateway.post("/api/auth/oidc/link", json={"linkToken": link}, headers=stranger["auth"]), 403)
    auth = owner["auth"]
    r = gateway.post("/api/auth/oidc/link", json={"linkToken": link}, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["provider"] == "test"
    _problem(gateway.post("/api/auth/oidc/link", json={"linkToken": link}, headers=auth), 404)
    r = gateway.get("/api/auth/oidc/identities", headers=auth)
    assert [i["provider"] for i in r.json()] == ["test"]

    r = gateway.post("/api/auth/oidc/test/exchange", json={"idToken": _signed(oidc_provider, sub=account)})
    assert r.status_code == 200 and r.json()["user"]["id"] == owner["user"]["id"]


def test_unverified_email_of_an_existing_account_is_refused(gateway, oidc_provider):
    email = f"{_account()}@example.com"
    register(gateway, "pw", email=email)
    body = _problem(gateway.post("/api/auth/oidc/test/exchange",
                                 json={"idToken": _signed(oidc_provider, email=email, email_verified=False)}), 409)
    assert "linkToken" not in body


def _webhook(gateway, oidc_provider, event: dict, *, secret: str | None = None) -> httpx.Response:
    body = json.dumps(event)
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = Webhook(secret or oidc_provider.webhook_secret).sign(msg_id, now, body)
    # Clerk sends the Standard Webhooks values under svix-* names
    return gateway.post("/api/auth/oidc/test/webhook", content=body, headers={
        "svix-id": msg_id, "svix-timestamp": str(int(now.timestamp())), "svix-signature": signature,
        "content-type": "application/json"})


def test_clerk_webhooks_sync_and_delete_linked_users(gateway, oidc_provider):
    account = _account()
    r = gateway.post("/api/auth/oidc/test/exchange", json={"idToken": _signed(oidc_provider, sub=account)})
    assert r.status_code == 200
    user_id = r.json()["user"]["id"]
    updated = {"type": "user.updated", "object": "event",
               "data": {"id": account, "object": "user", "first_name": "Ada", "last_name": "Lovelace"}}

    _problem(_webhook(gateway, oidc_provider, updated, secret="whsec_" + base64.b64encode(b"x" * 24).decode()), 401)
    _problem(gateway.post("/api/auth/oidc/test/webhook", json=updated), 401)
    assert gateway.get(f"/api/users/{user_id}").json()["displayName"] != "Ada Lovelace"

    r = _webhook(gateway, oidc_provider, updated)
    assert r.status_code == 200 and r.json() == {"type": "user.updated", "applied": True}
    assert gateway.get(f"/api/users/{user_id}").json()["displayName"] == "Ada Lovelace"

    r = _webhook(gateway, oidc_provider, {"type": "user.deleted", "data": {"id": account, "deleted": True}})
    assert r.status_code == 200 and r.json()["applied"] is True
    _problem(gateway.get(f"/api/users/{user_id}"), 404)
