"""A new user registers, logs in, refreshes, onboards, uploads an avatar and reads it back,
all through the gateway; and nothing secret lands in the gateway's logs."""

import io
import uuid

import pytest
from PIL import Image

pytestmark = pytest.mark.e2e


def _jpeg(size=(640, 480)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def test_account_journey(gateway, stack):
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    r = gateway.post("/api/auth/register", json={"email": f"{name}@example.com", "password": "s3cret-passw0rd",
                                                 "username": name})
    assert r.status_code == 201, r.text
    registered = r.json()

    r = gateway.post("/api/auth/login", json={"login": f"{name}@example.com", "password": "s3cret-passw0rd"})
    assert r.status_code == 200
    access = r.json()["accessToken"]

    r = gateway.post("/api/auth/refresh", json={"refreshToken": registered["refreshToken"]})
    assert r.status_code == 200
    assert r.json()["refreshToken"] != registered["refreshToken"]

    auth = {"Authorization": f"Bearer {access}"}
    r = gateway.post("/api/auth/onboard", json={"displayName": "E2E Person", "bio": "hello"}, headers=auth)
    assert r.status_code == 200 and r.json()["onboarded"] is True

    r = gateway.post("/api/upload/avatar", files={"file": ("me.jpg", _jpeg(), "image/jpeg")}, headers=auth)
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert url.startswith("/media/avatars/")

    me = gateway.get("/api/auth/user", headers=auth).json()
    assert me["avatar"] == url and me["displayName"] == "E2E Person"

    img = gateway.get(url)
    assert img.status_code == 200
    assert img.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(img.content)).format == "WEBP"

    public = gateway.get(f"/api/users/{me['id']}").json()
    assert public["avatar"] == url and "email" not in public

    # the access log has paths and statuses, never tokens
    log_text = (stack.config.data_dir / "nginx" / "logs" / "access.log").read_text()
    assert "/api/upload/avatar" in log_text
    assert access not in log_text and registered["refreshToken"] not in log_text
    assert "eyJ" not in log_text


def test_gateway_speaks_problem_json_and_sets_security_headers(gateway):
    r = gateway.get("/api/no-such-route")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 404

    big = b"x" * (7 * 1024 * 1024)
    r = gateway.post("/api/upload/avatar", files={"file": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413
    assert r.json()["status"] == 413

    r = gateway.get("/api/users/does-not-exist")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    for header in ("x-content-type-options", "x-frame-options", "referrer-policy"):
        assert header in r.headers


def test_openapi_and_jwks_are_published(gateway):
    spec = gateway.get("/api/auth/openapi.json")
    assert spec.status_code == 200
    assert "/api/auth/register" in spec.json()["paths"]
    jwks = gateway.get("/.well-known/jwks.json").json()
    assert jwks["keys"] and all(k["kty"] == "OKP" and k["alg"] == "EdDSA" and "d" not in k for k in jwks["keys"])


def test_web_client_is_served(gateway):
    r = gateway.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
