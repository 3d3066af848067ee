"""Error tracking through the real auth app (servicekit.errortracking), against a local envelope
receiver standing in for Sentry / GlitchTip: a route's unhandled error arrives with the service,
release and trace, and none of the request's secrets; the web client's reports are forwarded to
the same DSN, scrubbed; nothing of it runs without a DSN."""

from __future__ import annotations

import gzip
import json
import secrets
import uuid
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from auth_service.main import create_app
from auth_service.sessions import service as sessions

TRACE_ID = secrets.token_hex(16)


def stream_key() -> str:
    # the channels service's format (channels_service.streamkeys.service.new_key)
    return "live_" + secrets.token_urlsafe(32)


@pytest.fixture
async def tracked(auth_settings, envelope_receiver):
    """start(**settings) -> an httpx client on an auth app reporting to the receiver; a route's
    exception comes back as the 500 a real client gets, not raised into the test."""
    import contextlib

    stack = contextlib.AsyncExitStack()

    async def start(**overrides) -> httpx.AsyncClient:
        settings = auth_settings.model_copy(update={
            "sentry_dsn": SecretStr(envelope_receiver.dsn), "sentry_environment": "test", **overrides})
        app = create_app(settings, configure_process=False)
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000), raise_app_exceptions=False)
        return await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://auth.test"))

    yield start
    await stack.aclose()


async def test_an_unhandled_error_arrives_with_service_release_and_trace_and_no_secret(
        tracked, envelope_receiver, monkeypatch, mint, assert_problem):
    import sentry_sdk

    client = await tracked()
    password = "pw-" + secrets.token_hex(12)
    name = f"sentry_{secrets.token_hex(4)}"
    r = await client.post("/api/auth/register", json={"email": f"{name}@example.com", "username": name,
                                                      "password": password})
    assert r.status_code == 201, r.text
    token = r.json()["accessToken"]
    key = stream_key()
    cookie = "sess-" + secrets.token_hex(16)
    refresh = r.json()["refreshToken"]

    async def broken_issue_pair(*args, **kwargs):
        # an error whose text carries what a careless message would: a credential, a key, a password
        raise RuntimeError(f"session store refused: Authorization: Bearer {token} key={key} "
                           f"stream {key} password={password} refresh_token={refresh}")

    monkeypatch.setattr(sessions, "issue_pair", broken_issue_pair)
    r = await client.post(
        f"/api/auth/login?stream_key={key}&token={token}&next=/dashboard",
        json={"login": name, "password": password, "refreshToken": refresh},
        headers={"Authorization": f"Bearer {token}", "Cookie": f"session={cookie}; theme=dark",
                 "X-Stream-Key": key, "traceparent": f"00-{TRACE_ID}-{secrets.token_hex(8)}-01"})

    # the client gets the usual problem, nothing of the error
    body = assert_problem(r, 500)
    assert body["detail"] == "Something went wrong on our side."
    assert "RuntimeError" not in r.text and key not in r.text

    sentry_sdk.flush(timeout=5)
    event = envelope_receiver.wait_for(
        lambda e: any(v.get("type") == "RuntimeError" for v in (e.get("exception") or {}).get("values", [])))
    assert event["tags"]["service"] == "auth"
    assert event["release"] == "auth@0.1.0"
    assert event["environment"] == "test"
    # the request's trace (continued from its traceparent): the error is found in the traces
    assert event["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert event["tags"]["trace_id"] == TRACE_ID
    # what is useful stays: which route, which error
    assert event["request"]["url"].endswith("/api/auth/login")
    assert event["request"]["method"] == "POST"
    assert parse_qs(event["request"]["query_string"])["next"] == ["/dashboard"]
    assert event["request"]["data"]["login"] == name
    message = event["exception"]["values"][-1]["value"]
    assert message.startswith("session store refused: Authorization: Bearer [redacted]"), message

    raw = envelope_receiver.raw()
    assert raw, "nothing arrived"
    for secret in (password, token, token.rsplit(".", 1)[1], key, cookie, refresh):
        assert secret.encode() not in raw, f"{secret[:12]}... reached the error tracker"
    assert b"\"vars\"" not in raw  # no local variables at all


async def test_nothing_is_initialised_without_a_dsn(auth_settings, client):
    """`client` is the suite's ordinary app (no SENTRY_DSN): no SDK client, and in a fresh process
    the SDK is not even imported; with a DSN the same process has one."""
    import subprocess
    import sys

    r = await client.get("/healthz")
    assert r.status_code == 200
    if "sentry_sdk" in sys.modules:
        import sentry_sdk

        assert not sentry_sdk.get_client().is_active()

    probe = ("import sys, os\n"
             "from auth_service.config import Settings\n"
             "from auth_service.main import create_app\n"
             "create_app(Settings(**({'sentry_dsn': os.environ['DSN']} if 'DSN' in os.environ else {})),"
             " configure_process=False)\n"
             "sdk = sys.modules.get('sentry_sdk')\n"
             "print(sdk is not None and sdk.get_client().is_active(), 'sentry_sdk' in sys.modules)\n")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SENTRY_")}
    off = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert off.stdout.split() == ["False", "False"], off.stderr[-2000:]
    on = subprocess.run([sys.executable, "-c", probe], env={**env, "DSN": "http://k@127.0.0.1:9/1"},
                        capture_output=True, text=True, timeout=120)
    assert on.stdout.split() == ["True", "True"], on.stderr[-2000:]


# ---- the web client's reports (GET /api/client/config, POST /api/client/errors) ---------------

def browser_envelope(dsn: str, event: dict, *, extra_items: list[tuple[dict, bytes]] = ()) -> bytes:
    payload = json.dumps(event).encode()
    lines = [json.dumps({"event_id": event.get("event_id"), "dsn": dsn}).encode(),
             json.dumps({"type": "event", "length": len(payload)}).encode(), payload]
    for header, body in extra_items:
        lines += [json.dumps(header).encode(), body]
    return b"\n".join(lines) + b"\n"


async def test_the_web_client_config_names_the_public_dsn_only(tracked, envelope_receiver):
    # a legacy DSN with a secret key: the page must never see the secret
    legacy = envelope_receiver.dsn.replace("@", ":server-only-secret@")
    client = await tracked(sentry_dsn=SecretStr(legacy), sentry_release="web-2026.12")
    r = await client.get("/api/client/config")
    assert r.status_code == 200
    assert r.json() == {"errorTracking": {"dsn": envelope_receiver.dsn, "environment": "test",
                                          "release": "web-2026.12"}}
    assert "server-only-secret" not in r.text
    assert "max-age" in r.headers["cache-control"]


async def test_a_browser_report_is_scrubbed_and_forwarded_to_the_dsn(tracked, envelope_receiver, mint):
    client = await tracked()
    key, token = stream_key(), mint(str(uuid.uuid4()), "viewer")
    event_id = uuid.uuid4().hex
    event = {
        "event_id": event_id, "platform": "javascript", "level": "error",
        "exception": {"values": [{"type": "TypeError", "value": f"cannot read key {key} of undefined"}]},
        "request": {"url": f"http://localhost:8080/dashboard?token={token}&channel=abc",
                    "headers": {"User-Agent": "test", "Authorization": f"Bearer {token}"}},
        "breadcrumbs": {"values": [{"category": "navigation", "data": {"to": f"/x?stream_key={key}"}}]},
        "extra": {"streamKey": key, "note": f"password=hunter2-{event_id}"},
        "user": {"ip_address": "203.0.113.9"},
    }
    envelope = browser_envelope(envelope_receiver.dsn, event,
                                extra_items=[({"type": "attachment", "length": 3}, b"abc")])
    r = await client.post("/api/client/errors", content=envelope, headers={"Content-Type": "text/plain"})
    assert r.status_code == 204, r.text

    got = envelope_receiver.wait_for(lambda e: e.get("event_id") == event_id)
    assert got["tags"]["service"] == "web"
    assert got["exception"]["values"][0]["value"] == "cannot read key [redacted] of undefined"
    assert got["request"]["url"].endswith("/dashboard?token=[redacted]&channel=abc")
    assert "user" not in got
    [arrived] = [e for e in envelope_receiver.envelopes if e.header.get("event_id") == event_id]
    assert [h["type"] for h, _ in arrived.items] == ["event"]  # the attachment was dropped
    for secret in (key, token, f"hunter2-{event_id}", "203.0.113.9"):
        assert secret.encode() not in arrived.raw


async def test_browser_reports_are_refused_when_off_malformed_foreign_or_too_many(
        tracked, auth_settings, app_client, envelope_receiver, assert_problem):
    off = await app_client()
    assert (await off.get("/api/client/config")).json() == {"errorTracking": None}
    assert_problem(await off.post("/api/client/errors", content=b"{}\n"), 404)

    client = await tracked()
    event = {"event_id": uuid.uuid4().hex, "message": "x"}
    assert_problem(await client.post("/api/client/errors", content=b"not an envelope"), 400)
    other = envelope_receiver.dsn.replace(f"/{envelope_receiver.project}", "/7")
    assert_problem(await client.post("/api/client/errors", content=browser_envelope(other, event)), 400)
    assert_problem(await client.post("/api/client/errors", content=b"x" * (70 * 1024)), 413)
    compressed = gzip.compress(browser_envelope(envelope_receiver.dsn, event))
    assert_problem(await client.post("/api/client/errors", content=compressed), 400)
    statuses = [(await client.post("/api/client/errors", content=browser_envelope(envelope_receiver.dsn, event))
                 ).status_code for _ in range(32)]
    assert statuses.count(204) <= 30 and statuses[-1] == 429
