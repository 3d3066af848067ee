"""Property-based fuzzing of every documented operation with Schemathesis, in-process.

The schema is taken from the app's own /openapi.json at import time (building the app does not
connect anywhere); each generated test then runs against a fresh app started on the test servers.
Schemathesis drives that app through its ASGI transport, whose event loop runs in its own thread,
so the app is started there (its lifespan) rather than on pytest's loop.

Checks: no 5xx for any input, and every answer matches the documented schema and media type for
its status. Nobody answers channels.ingest.authorize here, so well-formed keys are refused too
(403), which is documented.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from media_gateway.config import Settings
from media_gateway.main import create_app

schema = schemathesis.openapi.from_dict(create_app(Settings(), configure_process=False).openapi())
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# bounded for the suite; raise it for a deeper hunt: MEDIA_GATEWAY_FUZZ_EXAMPLES=500 pytest ...
EXAMPLES = int(os.environ.get("MEDIA_GATEWAY_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def fuzz_target(media_settings):
    app = create_app(media_settings.model_copy(update={"authorize_timeout_seconds": 0.2}),
                     configure_process=False)
    try:
        with asgi.get_client(app):  # starts the app's lifespan on Schemathesis' loop
            pass
        yield app
    finally:
        asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_never_fails_and_matches_its_schema(case, fuzz_target):
    case.call_and_validate(app=fuzz_target, checks=CHECKS)
