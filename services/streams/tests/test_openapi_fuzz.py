"""Property-based fuzzing of every documented operation with Schemathesis, in-process.

The schema is the app's own /openapi.json (building the app connects nowhere); each generated
case runs against an app started on the test servers, inside Schemathesis' ASGI client (its event
loop runs in its own thread, so the app is started there). The caller owns a channel that has a
prepared session, so path parameters aimed at real ids reach the code behind them.

Checks: no 5xx for any input, and every answer matches the documented schema and media type.
"""

import hashlib
import os
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from streams_service.config import Settings
from streams_service.main import create_app

schema = schemathesis.openapi.from_dict(create_app(Settings(), configure_process=False).openapi())
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# bounded for the suite; raise it for a deeper hunt: STREAMS_FUZZ_EXAMPLES=500 pytest ...
EXAMPLES = int(os.environ.get("STREAMS_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def fuzz_target(streams_settings, jwks, make_user):
    caller = make_user("fuzz_caller")
    channel_id = str(uuid.uuid4())
    dsn = streams_settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO streams_channels (id, owner_id, name, slug, synced_at) "
                     "VALUES (%s, %s, %s, %s, %s)",
                     (channel_id, caller.id, "Fuzz", "fuzz", datetime.now(UTC)))
    app = create_app(streams_settings, configure_process=False, jwks=jwks)
    try:
        with asgi.get_client(app) as http:  # starts the app's lifespan on Schemathesis' loop
            r = http.post("/api/streams", headers=caller.headers,
                          json={"channelId": channel_id, "title": "fuzz"})
            assert r.status_code == 201, r.text
            stream_id = r.json()["id"]
        yield app, caller, channel_id, stream_id
    finally:
        asgi.shutdown_lifespans()


def aim(case, channel_id: str, stream_id: str) -> None:
    """Three in four generated ids are replaced by real ones."""
    for name, real in (("channel_id", channel_id), ("stream_id", stream_id)):
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, str) and hashlib.sha256(value.encode("utf-8", "replace")).digest()[0] % 4:
            case.path_parameters[name] = real
    if isinstance(case.body, dict) and "channelId" in case.body and hashlib.sha256(
            repr(case.body).encode()).digest()[0] % 2:
        case.body["channelId"] = channel_id


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_never_fails_and_matches_its_schema(case, fuzz_target):
    app, caller, channel_id, stream_id = fuzz_target
    aim(case, channel_id, stream_id)
    case.call_and_validate(app=app, headers=caller.headers, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=max(5, EXAMPLES // 5), deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_without_credentials(case, fuzz_target):
    """No token: protected operations answer a documented 401, the rest still never 5xx."""
    app, _, channel_id, stream_id = fuzz_target
    aim(case, channel_id, stream_id)
    case.call_and_validate(app=app, checks=CHECKS)
