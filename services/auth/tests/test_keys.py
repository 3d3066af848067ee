"""Signing keys, the JWKS, rotation, and forged access tokens against GET /api/auth/user."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from auth_service.keys import service as keys
from auth_service.main import create_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy import text

PASSWORD = "correct horse battery"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


def hs256(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = unsigned({**header, "alg": "HS256"}, claims)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture
async def real_key(db, auth_settings, register):
    """The service's active signing key (created by the first registration)."""
    await register("key_holder")
    async with db() as session:
        return await keys.active_key(session, auth_settings)


@pytest.fixture
async def victim(register):
    return await register("victim_1")


@pytest.fixture
def claims_for(auth_settings):
    def _claims(user: dict, **changes) -> dict:
        now = int(time.time())
        claims = {
            "iss": auth_settings.jwt_issuer,
            "aud": auth_settings.jwt_audience,
            "sub": user["user"]["id"],
            "username": user["user"]["username"],
            "typ": "access",
            "jti": "forged",
            "iat": now,
            "exp": now + 600,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    return _claims


async def get_me(client, token: str):
    return await client.get("/api/auth/user", headers={"Authorization": f"Bearer {token}"})


# ---- the JWKS -----------------------------------------------------------------------------------


async def test_jwks_publishes_the_public_signing_key(client, register):
    result = await register("jwks_user")
    r = await client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert "max-age" in r.headers["cache-control"]
    doc = r.json()
    assert len(doc["keys"]) == 1
    jwk = doc["keys"][0]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert jwk["use"] == "sig" and jwk["alg"] == "EdDSA"
    assert "d" not in jwk  # never the private half
    assert jwk["kid"] == jwt.get_unverified_header(result["accessToken"])["kid"]
    # the published key really verifies the token
    claims = jwt.decode(
        result["accessToken"],
        key=jwt.PyJWK(jwk),
        algorithms=["EdDSA"],
        audience="streamplatform",
        issuer="streamplatform-auth",
    )
    assert claims["sub"] == result["user"]["id"]


async def test_private_keys_are_encrypted_when_a_passphrase_is_set(auth_settings):
    plain = keys.new_key(auth_settings)
    assert "BEGIN PRIVATE KEY" in plain.private_pem
    secret = auth_settings.model_copy(update={"signing_key_passphrase": SecretStr("s3cret passphrase")})
    encrypted = keys.new_key(secret)
    assert "ENCRYPTED PRIVATE KEY" in encrypted.private_pem
    with pytest.raises(TypeError):  # useless without the passphrase
        keys.load_private(auth_settings, encrypted)
    token = keys.sign(secret, encrypted, {"sub": "x"})
    assert jwt.decode(token, key=jwt.PyJWK(encrypted.public_jwk), algorithms=["EdDSA"])["sub"] == "x"


# ---- forged tokens ------------------------------------------------------------------------------


async def test_a_correctly_signed_token_is_accepted(client, auth_settings, real_key, victim, claims_for):
    # control: the forging helpers produce tokens the service accepts when nothing is wrong,
    # so every rejection below is about the one thing each attack changes
    token = keys.sign(auth_settings, real_key, claims_for(victim))
    r = await get_me(client, token)
    assert r.status_code == 200 and r.json()["id"] == victim["user"]["id"]


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_rejected(client, real_key, victim, claims_for, assert_problem, alg):
    token = unsigned({"alg": alg, "typ": "JWT", "kid": real_key.kid}, claims_for(victim)) + "."
    assert_problem(await get_me(client, token), 401)


async def test_tampered_signature_is_rejected(client, victim, assert_problem):
    head, payload, sig = victim["accessToken"].split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[10] ^= 0x01
    assert_problem(await get_me(client, f"{head}.{payload}.{b64url(bytes(raw))}"), 401)
    assert (await get_me(client, victim["accessToken"])).status_code == 200


async def test_tampered_claims_are_rejected(client, register, victim, assert_problem):
    other = await register("other_2")
    head, payload, sig = victim["accessToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = other["user"]["id"]
    forged = f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"
    assert_problem(await get_me(client, forged), 401)


async def test_foreign_key_with_unknown_kid_is_rejected(client, victim, claims_for, assert_problem):
    foreign = Ed25519PrivateKey.generate()
    token = jwt.encode(claims_for(victim), foreign, algorithm="EdDSA", headers={"kid": "attacker-kid"})
    assert_problem(await get_me(client, token), 401)


async def test_foreign_key_claiming_the_real_kid_is_rejected(
    client, real_key, victim, claims_for, assert_problem
):
    foreign = Ed25519PrivateKey.generate()
    token = jwt.encode(claims_for(victim), foreign, algorithm="EdDSA", headers={"kid": real_key.kid})
    assert_problem(await get_me(client, token), 401)


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "someone-else"},
        {"aud": "another-audience"},
        {"aud": ["another-audience"]},
        {"exp": int(time.time()) - 60},
        {"exp": None},
        {"sub": None},
        {"iss": None},
        {"aud": None},
        {"iat": None},
        {"typ": "refresh"},
        {"nbf": int(time.time()) + 3600},
    ],
    ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()),
)
async def test_wrong_claims_are_rejected(
    client, auth_settings, real_key, victim, claims_for, assert_problem, changes
):
    token = keys.sign(auth_settings, real_key, claims_for(victim, **changes))
    assert_problem(await get_me(client, token), 401)


async def test_hs256_signed_with_the_public_key_is_rejected(
    client, auth_settings, real_key, victim, claims_for, assert_problem
):
    raw = base64.urlsafe_b64decode(real_key.public_jwk["x"] + "==")
    pem = (
        keys.load_private(auth_settings, real_key)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"typ": "JWT", "kid": real_key.kid}
    for secret in (raw, pem, json.dumps(real_key.public_jwk).encode()):
        assert_problem(await get_me(client, hs256(header, claims_for(victim), secret)), 401)


async def test_eddsa_header_with_a_key_that_is_not_published_is_rejected(client, victim, assert_problem):
    head, payload, sig = victim["accessToken"].split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    del header["kid"]
    assert_problem(await get_me(client, f"{b64url(json.dumps(header).encode())}.{payload}.{sig}"), 401)


@pytest.mark.parametrize(
    "value",
    [
        "{token}",
        "Token {token}",
        "Basic {token}",
        "Bearer",
        "Bearer ",
        "Bearer not.a.jwt",
        "Bearer garbage",
        "Bearer {token}x",
    ],
)
async def test_malformed_authorization_headers_are_rejected(client, victim, assert_problem, value):
    r = await client.get(
        "/api/auth/user", headers={"Authorization": value.format(token=victim["accessToken"])}
    )
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].lower().startswith("bearer")


async def test_lower_case_scheme_is_accepted(client, victim):
    r = await client.get("/api/auth/user", headers={"Authorization": f"bearer {victim['accessToken']}"})
    assert r.status_code == 200


async def test_no_authorization_header_is_401(client, assert_problem):
    r = await client.get("/api/auth/user")
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].lower().startswith("bearer")


# ---- rotation -----------------------------------------------------------------------------------


async def jwks_kids(client) -> list[str]:
    return [k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]]


async def lead_passes(db, seconds: float) -> None:
    """Move every key's schedule into the past, as if the publish lead had passed."""
    async with db() as session:
        await session.execute(text(
            "UPDATE signing_keys SET activates_at = activates_at - make_interval(secs => :s),"
            " retired_at = retired_at - make_interval(secs => :s), created_at = created_at - make_interval(secs => :s)"
        ), {"s": seconds + 1})
        await session.commit()


async def test_rotation_publishes_the_new_key_first_then_signs_with_it(client, db, auth_settings, register):
    old = await register("rotating_1")
    old_kid = jwt.get_unverified_header(old["accessToken"])["kid"]
    async with db() as session:
        new_key = await keys.rotate(session, auth_settings)
        await session.commit()
    assert new_key.kid != old_kid

    kids = await jwks_kids(client)
    assert set(kids) == {old_kid, new_key.kid}
    assert kids[0] == new_key.kid  # newest first

    # a token signed before the rotation still verifies ...
    r = await get_me(client, old["accessToken"])
    assert r.status_code == 200 and r.json()["username"] == "rotating_1"
    # ... the new key is only published during the lead: the old one keeps signing ...
    during = (await client.post("/api/auth/login", json={"login": "rotating_1", "password": PASSWORD})).json()
    assert jwt.get_unverified_header(during["accessToken"])["kid"] == old_kid
    # ... and once the lead has passed everything issued carries the new kid, and verifies
    await lead_passes(db, auth_settings.signing_key_publish_lead_seconds)
    fresh = (await client.post("/api/auth/login", json={"login": "rotating_1", "password": PASSWORD})).json()
    assert jwt.get_unverified_header(fresh["accessToken"])["kid"] == new_key.kid
    assert (await get_me(client, fresh["accessToken"])).status_code == 200
    refreshed = (await client.post("/api/auth/refresh", json={"refreshToken": fresh["refreshToken"]})).json()
    assert jwt.get_unverified_header(refreshed["accessToken"])["kid"] == new_key.kid
    assert set(await jwks_kids(client)) == {old_kid, new_key.kid}  # old tokens still verify


async def test_retired_keys_leave_the_jwks_once_their_tokens_expired(client, db, auth_settings, register):
    old = await register("rotating_2")
    old_kid = jwt.get_unverified_header(old["accessToken"])["kid"]
    async with db() as session:
        new_key = await keys.rotate(session, auth_settings)
        await session.commit()
    assert set(await jwks_kids(client)) == {old_kid, new_key.kid}
    # pretend the rotation happened longer ago than any token of the old key can live
    long_ago = datetime.now(UTC) - timedelta(seconds=auth_settings.access_token_ttl_seconds + 301)
    async with db() as session:
        await session.execute(
            text("UPDATE signing_keys SET retired_at = :at WHERE kid = :kid"),
            {"at": long_ago, "kid": old_kid},
        )
        await session.commit()
    assert await jwks_kids(client) == [new_key.kid]


async def test_a_key_past_its_rotation_age_is_replaced_on_next_use(client, db, auth_settings, register):
    first = await register("rotating_3")
    old_kid = jwt.get_unverified_header(first["accessToken"])["kid"]
    async with db() as session:
        await session.execute(text("UPDATE signing_keys SET created_at = now() - interval '31 days',"
                                   " activates_at = now() - interval '31 days'"))
        await session.commit()
    second = await register("rotating_4")  # due: the next key is published, the old one still signs
    assert jwt.get_unverified_header(second["accessToken"])["kid"] == old_kid
    kids = await jwks_kids(client)
    assert len(kids) == 2 and old_kid in kids
    new_kid = kids[0]
    await register("rotating_4b")  # a pending key exists: no second one
    assert len(await jwks_kids(client)) == 2
    await lead_passes(db, auth_settings.signing_key_publish_lead_seconds)
    third = await register("rotating_5")
    assert jwt.get_unverified_header(third["accessToken"])["kid"] == new_kid
    fourth = await register("rotating_5b")  # the new key is young: no further rotation
    assert jwt.get_unverified_header(fourth["accessToken"])["kid"] == new_kid
    assert set(await jwks_kids(client)) == {old_kid, new_kid}


async def test_rotate_keys_cli(client, db, auth_settings, register):
    first = await register("rotating_6")
    old_kid = jwt.get_unverified_header(first["accessToken"])["kid"]
    env = {**os.environ, "DATABASE_URL": auth_settings.database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "auth_service",
        "rotate-keys",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    stdout = out.decode()
    assert stdout.startswith("new signing key:") and "signs from" in stdout
    new_kid = stdout.split()[3]
    assert new_kid != old_kid
    assert set(await jwks_kids(client)) == {old_kid, new_kid}
    await lead_passes(db, auth_settings.signing_key_publish_lead_seconds)
    second = (await client.post("/api/auth/login", json={"login": "rotating_6", "password": PASSWORD})).json()
    assert jwt.get_unverified_header(second["accessToken"])["kid"] == new_kid


async def test_a_new_key_verifies_right_after_a_recent_jwks_fetch(db, auth_settings):
    """A verifier that fetched the JWKS just before a rotation accepts the new key's first tokens:
    the key was published a lead longer than the refetch cool-down before it signed. (With a
    zero lead the login below would carry the new kid while the cool-down still blocks the
    refetch: 401.) Real time, short lead and cool-down."""
    settings = auth_settings.model_copy(update={"signing_key_publish_lead_seconds": 1.0,
                                                "jwks_refetch_cooldown_seconds": 0.5})
    app = create_app(settings, configure_process=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
            user = (await client.post("/api/auth/register", json={
                "username": "rotating_7", "email": "rotating_7@example.com", "password": PASSWORD})).json()
            assert (await get_me(client, user["accessToken"])).status_code == 200  # JWKS just fetched
            async with db() as session:
                new_key = await keys.rotate(session, settings)
                await session.commit()
            during = (await client.post("/api/auth/login", json={"login": "rotating_7", "password": PASSWORD})).json()
            assert jwt.get_unverified_header(during["accessToken"])["kid"] != new_key.kid
            assert (await get_me(client, during["accessToken"])).status_code == 200
            await asyncio.sleep(1.1)
            fresh = (await client.post("/api/auth/login", json={"login": "rotating_7", "password": PASSWORD})).json()
            assert jwt.get_unverified_header(fresh["accessToken"])["kid"] == new_key.kid
            assert (await get_me(client, fresh["accessToken"])).status_code == 200
