"""Property-based fuzzing of every documented operation with Schemathesis, in-process.

The schema is taken from the app's own /openapi.json at import time (building the app does not
connect anywhere); each generated test then runs against a fresh app started on the test servers.
Schemathesis drives that app through its ASGI transport, whose event loop runs in its own thread,
so the app is started there (its lifespan) rather than on pytest's loop.

Checks: no 5xx for any input, and every answer matches the documented schema and media type for
its status.
"""

import hashlib
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from channels_service.config import Settings
from channels_service.main import create_app

schema = schemathesis.openapi.from_dict(create_app(Settings(), configure_process=False).openapi())
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# bounded for the suite; raise it for a deeper hunt: CHANNELS_FUZZ_EXAMPLES=500 pytest ...
EXAMPLES = int(os.environ.get("CHANNELS_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def fuzz_target(channels_settings, jwks, make_user):
    """A started app, a caller who owns a channel and is moderator of another, and that other owner."""
    app = create_app(channels_settings, configure_process=False, jwks=jwks)
    caller, other = make_user("fuzz_caller"), make_user("fuzz_other")
    try:
        with asgi.get_client(app) as http:  # starts the app's lifespan on Schemathesis' loop
            own = http.post("/api/channels", json={"name": "Fuzz Own"}, headers=caller.headers)
            theirs = http.post("/api/channels", json={"name": "Fuzz Theirs"}, headers=other.headers)
            assert own.status_code == theirs.status_code == 201, (own.text, theirs.text)
            r = http.put(f"/api/channels/{theirs.json()['id']}/moderators/{caller.id}", headers=other.headers)
            assert r.status_code == 204, r.text
        yield app, caller, other, [own.json(), theirs.json()]
    finally:
        asgi.shutdown_lifespans()


def aim(case, caller, other, channels: list[dict]) -> None:
    """Most generated ids are replaced by real ones, so the fuzzer also reaches the code behind a
    found channel or user (edits, moderation) and not only the 404 path."""
    params = case.path_parameters or {}
    for name, choices in (("channel_id", [c["id"] for c in channels] + [channels[0]["slug"]]),
                          ("user_id", [caller.id, other.id])):
        value = params.get(name)
        if not isinstance(value, str):
            continue
        pick = hashlib.sha256(value.encode("utf-8", "replace")).digest()[0] % (len(choices) + 1)
        if pick < len(choices):
            params[name] = choices[pick]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_never_fails_and_matches_its_schema(case, fuzz_target):
    app, caller, other, channels = fuzz_target
    aim(case, caller, other, channels)
    case.call_and_validate(app=app, headers=caller.headers, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=max(5, EXAMPLES // 5), deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_without_credentials(case, fuzz_target):
    """No token: protected operations answer a documented 401, the rest still never 5xx."""
    app, caller, other, channels = fuzz_target
    aim(case, caller, other, channels)
    case.call_and_validate(app=app, checks=CHECKS)
