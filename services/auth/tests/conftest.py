"""Auth tests run the real app in-process (ASGI) against real PostgreSQL, NATS and Valkey."""

from pathlib import Path

import httpx
import pytest

from servicekit.db import upgrade

from auth_service.config import Settings
from auth_service.main import create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "auth_service" / "migrations"


@pytest.fixture
def auth_db_url(test_servers):
    url = test_servers.database_from_template("auth_template", lambda u: upgrade(MIGRATIONS, u))
    yield url
    test_servers.drop_database(url)


@pytest.fixture
def auth_settings(auth_db_url, nats_url_for, redis_url, object_store_env) -> Settings:
    return Settings(
        database_url=auth_db_url, nats_url=nats_url_for("auth"), redis_url=redis_url,
        # avatars go to the real S3 server (SeaweedFS), as they go to R2 in production
        **{k.lower(): v for k, v in object_store_env.items()}, media_base_url="/media",
        # cheap hashing keeps the suite fast; production defaults are checked in test_passwords
        argon2_memory_kib=8192, argon2_time_cost=1, outbox_poll_seconds=0.2,
    )


@pytest.fixture
async def auth_app(auth_settings):
    app = create_app(auth_settings, configure_process=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(auth_app):
    transport = httpx.ASGITransport(app=auth_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as c:
        yield c


@pytest.fixture
def register(client):
    """Register a user and return the auth result (user, tokens)."""
    counter = iter(range(1_000_000))

    async def _register(username: str | None = None, password: str = "correct horse battery", **extra):
        name = username or f"user_{next(counter)}"
        r = await client.post("/api/auth/register", json={"email": f"{name}@example.com", "password": password,
                                                          "username": name, **extra})
        assert r.status_code == 201, r.text
        return r.json()

    return _register


@pytest.fixture
def bearer():
    """Authorization header for an auth result or a raw access token."""

    def _bearer(result: dict | str) -> dict:
        token = result if isinstance(result, str) else result["accessToken"]
        return {"Authorization": f"Bearer {token}"}

    return _bearer


# ---- shared helpers for the auth suite ---------------------------------------------------------

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def assert_problem():
    """Check an RFC 9457 answer: status, media type, the four members, and `errors` on 422.

    `fields` are names that must appear among `errors[].field` (a name matches itself and any
    nested path below it, e.g. `socialLinks` matches `socialLinks.twitter`)."""

    def _check(response: httpx.Response, status: int, *, fields: tuple[str, ...] = ()) -> dict:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers
        body = response.json()
        assert {"type", "title", "status", "detail"} <= body.keys(), body
        assert body["status"] == status
        assert isinstance(body["type"], str) and body["type"]
        assert isinstance(body["title"], str) and body["title"]
        assert isinstance(body["detail"], str) and body["detail"]
        assert "Traceback" not in response.text
        if status == 422:
            assert isinstance(body.get("errors"), list) and body["errors"], body
        reported = {e.get("field") for e in body.get("errors") or []}
        for name in fields:
            assert any(f == name or (f or "").startswith(name + ".") for f in reported), (name, reported)
        return body

    return _check


@pytest.fixture
def db(auth_app):
    """`async with db() as session:` on the app's own database."""
    return auth_app.state.runtime.db.session


@pytest.fixture
async def app_client(auth_settings):
    """Build another in-process app (same database, broker and store) with settings overridden:
    `c = await app_client(login_failures_per_ip=3)`. Everything is shut down after the test."""
    import contextlib

    stack = contextlib.AsyncExitStack()

    async def _make(*, ip: str = "127.0.0.1", **overrides) -> httpx.AsyncClient:
        settings = auth_settings.model_copy(update=overrides)
        app = create_app(settings, configure_process=False)
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, client=(ip, 50000))
        return await stack.enter_async_context(httpx.AsyncClient(transport=transport,
                                                                 base_url="http://auth.test"))

    yield _make
    await stack.aclose()
