"""End-to-end: the whole platform as `make run` starts it (same binaries, same gateway config),
on free ports and a throwaway data folder, driven over HTTP through the nginx gateway."""

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest
from devstack.envelopes import EnvelopeReceiver
from devstack.oidc import TestOidcProvider
from devstack.otlp import SpanCollector
from devstack.pytest_plugin import fail_on_nats_refusals
from devstack.stack import Stack, StackConfig

from .helpers import gateway_client


MUX_WEBHOOK_SECRET = "e2e-mux-webhook-secret"
CLOUDFLARE_WEBHOOK_AUTH = "e2e-cloudflare-live-input-auth"


@pytest.fixture(scope="session")
def mux_webhook_secret() -> str:
    return MUX_WEBHOOK_SECRET


@pytest.fixture(scope="session")
def cloudflare_webhook_auth() -> str:
    return CLOUDFLARE_WEBHOOK_AUTH


@pytest.fixture(scope="session")
def span_collector():
    """Every service of the e2e stack exports its spans here (OTLP/HTTP), as it would to a real
    collector; test_one_trace.py reads them."""
    with SpanCollector() as collector:
        yield collector


@pytest.fixture(scope="session")
def error_tracker():
    """Every service of the e2e stack reports its errors here (SENTRY_DSN), as it would to Sentry or
    GlitchTip, and so does the web client through auth (test_error_reporting.py reads them)."""
    with EnvelopeReceiver() as receiver:
        yield receiver


def _load_fake_providers():
    # tests run with --import-mode=importlib: a sibling module is loaded by path, not imported
    spec = importlib.util.spec_from_file_location("e2e_fake_providers", Path(__file__).with_name("fake_providers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def provider_api():
    """A local Mux + Cloudflare Stream API (fake_providers.py) that the stack's channels service
    talks to instead of the real ones (test_providers_through_gateway.py)."""
    with _load_fake_providers().FakeProviders() as fake:
        yield fake


# Clerk's webhook secret for the test provider (base64 after `whsec_`, as Clerk shows it)
OIDC_WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    data_dir = Path(tempfile.mkdtemp(prefix="sp-e2e-"))
    if os.geteuid() == 0:
        os.chmod(data_dir, 0o755)  # the dropped-privilege PostgreSQL user must traverse it
    config = StackConfig.ephemeral(data_dir)
    yield config
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def oidc_provider(stack_config):
    """A real OpenID Connect provider the stack's auth service is configured with (as "test")."""
    with TestOidcProvider([f"{stack_config.gateway_url}/api/auth/oidc/test/callback"]) as provider:
        provider.webhook_secret = OIDC_WEBHOOK_SECRET
        yield provider


@pytest.fixture(scope="session")
def stack(span_collector, error_tracker, stack_config, oidc_provider, provider_api):
    config = stack_config
    config.extra_env.update(span_collector.env())
    config.extra_env.update({"SENTRY_DSN": error_tracker.dsn, "SENTRY_ENVIRONMENT": "e2e"})
    config.extra_env["OIDC_PROVIDERS"] = json.dumps(
        {"test": oidc_provider.settings_entry(webhook_secret=OIDC_WEBHOOK_SECRET)})
    # streams: an encoder gone longer than this ends its stream; 5 s instead of 10 keeps the
    # "reconnect after the window" test short (test_stream_lifecycle_through_gateway.py)
    config.extra_env["RECONNECT_WINDOW_SECONDS"] = "5"
    # the simulcast tests' destinations are local nginx-rtmp servers and a refused loopback port
    config.extra_env["SIMULCAST_ALLOW_PRIVATE_DESTINATIONS"] = "true"
    # media gateway: a DVR window of 20 s instead of 30 min, so a stream of a test's length fills it
    # (test_llhls_through_gateway.py: segments beyond the in-memory window, served from disk)
    config.extra_env["DVR_WINDOW_SECONDS"] = "20"
    # channels: hosted providers against the local stand-in; media gateway: Mux webhooks signed
    config.extra_env.update(provider_api.env())
    config.extra_env["MUX_WEBHOOK_SECRET"] = MUX_WEBHOOK_SECRET
    config.extra_env["CLOUDFLARE_WEBHOOK_AUTH"] = CLOUDFLARE_WEBHOOK_AUTH
    with Stack(config, log=lambda _m: None) as running:
        yield running


@pytest.fixture
def gateway(stack) -> httpx.Client:
    with gateway_client(stack) as client:
        yield client


_nats_refused_nothing = fail_on_nats_refusals("stack")
