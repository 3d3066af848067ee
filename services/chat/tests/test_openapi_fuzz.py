"""Property-based fuzzing of every documented operation with Schemathesis, in-process.

The caller owns a channel (in chat's replica) with a LIVE stream, one message and one report, so
generated ids are often replaced by real ones and reach the code behind them.
Checks: no 5xx for any input, answers match the documented schema and media type.
"""

import hashlib
import os
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
import schemathesis
from chat_service.config import Settings
from chat_service.main import create_app
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

schema = schemathesis.openapi.from_dict(create_app(Settings(), configure_process=False).openapi())
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = int(os.environ.get("CHAT_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def fuzz_target(chat_settings, jwks, make_user):
    caller = make_user("fuzz_caller")
    channel_id, stream_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    dsn = chat_settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO chat_channels (id, owner_id, slug, synced_at) VALUES (%s, %s, %s, %s)",
                     (channel_id, caller.id, "fuzz", now))
        conn.execute("INSERT INTO chat_streams (id, channel_id, status, synced_at) VALUES (%s, %s, 'LIVE', %s)",
                     (stream_id, channel_id, now))
    # generous limits: the fuzzer sends far more than a person would
    settings_ = chat_settings.model_copy(update={"rate_limit_messages": 100_000,
                                                 "rate_limit_moderator_messages": 100_000})
    app = create_app(settings_, configure_process=False, jwks=jwks)
    try:
        with asgi.get_client(app) as http:
            r = http.post("/api/messages", headers=caller.headers, json={"channelId": channel_id, "content": "hi"})
            assert r.status_code == 201, r.text
            message_id = r.json()["id"]
            r = http.post("/api/reports", headers=caller.headers,
                          json={"channelId": channel_id, "messageId": message_id, "reason": "fuzz"})
            assert r.status_code == 201, r.text
            report_id = r.json()["id"]
        yield app, caller, {"channel_id": channel_id, "stream_id": stream_id, "message_id": message_id,
                            "report_id": report_id}
    finally:
        asgi.shutdown_lifespans()


def aim(case, real: dict[str, str]) -> None:
    """Three in four generated ids are replaced by real ones."""
    for name, value in real.items():
        generated = (case.path_parameters or {}).get(name)
        if isinstance(generated, str) and hashlib.sha256(generated.encode("utf-8", "replace")).digest()[0] % 4:
            case.path_parameters[name] = value
    if isinstance(case.body, dict) and hashlib.sha256(repr(case.body).encode()).digest()[0] % 2:
        for key, name in (("channelId", "channel_id"), ("streamId", "stream_id"), ("messageId", "message_id")):
            if key in case.body:
                case.body[key] = real[name]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_never_fails_and_matches_its_schema(case, fuzz_target):
    app, caller, real = fuzz_target
    aim(case, real)
    case.call_and_validate(app=app, headers=caller.headers, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=max(5, EXAMPLES // 5), deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_without_credentials(case, fuzz_target):
    """No token: protected operations answer a documented 401, the rest still never 5xx."""
    app, _, real = fuzz_target
    aim(case, real)
    case.call_and_validate(app=app, checks=CHECKS)
