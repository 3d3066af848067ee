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

from auth_service.config import Settings
from auth_service.main import create_app

schema = schemathesis.openapi.from_dict(create_app(Settings(), configure_process=False).openapi())
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# bounded for the suite; raise it for a deeper hunt: AUTH_FUZZ_EXAMPLES=500 pytest ...
EXAMPLES = int(os.environ.get("AUTH_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def fuzz_target(auth_settings):
    """A started app, plus a registered caller and a second user to aim path parameters at."""
    app = create_app(auth_settings, configure_process=False)
    try:
        with asgi.get_client(app) as http:  # starts the app's lifespan on Schemathesis' loop
            users = []
            for name in ("fuzz_caller", "fuzz_other"):
                r = http.post(
                    "/api/auth/register",
                    json={
                        "email": f"{name}@example.com",
                        "username": name,
                        "password": "correct horse battery",
                    },
                )
                assert r.status_code == 201, r.text
                users.append(r.json())
        yield app, users[0], users[1]
    finally:
        asgi.shutdown_lifespans()


def aim(case, caller: dict, other: dict) -> None:
    """Half of the generated `user_id`s are replaced by real ones, so the fuzzer also reaches the
    code behind a found user (profile updates, blocks) and not only the 404 path."""
    user_id = (case.path_parameters or {}).get("user_id")
    if not isinstance(user_id, str):
        return
    pick = hashlib.sha256(user_id.encode("utf-8", "replace")).digest()[0] % 4
    if pick == 0:
        case.path_parameters["user_id"] = caller["user"]["id"]
    elif pick == 1:
        case.path_parameters["user_id"] = other["user"]["id"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation_never_fails_and_matches_its_schema(case, fuzz_target):
    app, caller, other = fuzz_target
    aim(case, caller, other)
    case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {caller['accessToken']}"}, checks=CHECKS
    )


@schema.parametrize()
@settings(
    max_examples=max(5, EXAMPLES // 5),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation_without_credentials(case, fuzz_target):
    """No token: protected operations answer a documented 401, the rest still never 5xx."""
    app, _, _ = fuzz_target
    case.call_and_validate(app=app, checks=CHECKS)
