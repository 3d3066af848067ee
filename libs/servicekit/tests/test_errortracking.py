"""servicekit.errortracking on its own: the DSN, the scrubbing walk, trace linking and breadcrumbs
of errors outside a request, against the local envelope receiver (devstack.envelopes). The routes'
side runs through the real apps: services/auth/tests/test_error_tracking.py (a 500, the browser's
reports) and services/chat/tests/edge/test_error_tracking.py (the edge's entry point)."""

from __future__ import annotations

import logging
import secrets

import pytest
from opentelemetry.sdk.trace import TracerProvider
from servicekit.errortracking import (
    BadEnvelope,
    Dsn,
    parse_envelope,
    scrub_event,
    setup_error_tracking,
)
from servicekit.settings import ServiceSettings

KEY = "live_" + secrets.token_urlsafe(32)
JWT = ("eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAwMDB9"
       ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmU")


def test_a_dsn_is_parsed_and_its_public_form_never_has_the_secret_key():
    dsn = Dsn.parse("https://pub123:legacy-secret@errors.example.com:8443/sentry/17")
    assert (dsn.scheme, dsn.public_key, dsn.host, dsn.path_prefix, dsn.project_id) == \
        ("https", "pub123", "errors.example.com:8443", "/sentry", "17")
    assert dsn.public == "https://pub123@errors.example.com:8443/sentry/17"
    assert dsn.envelope_url == "https://errors.example.com:8443/sentry/api/17/envelope/"
    for bad in ("", "errors.example.com/1", "https://errors.example.com/1", "https://k@host/project", "ftp://k@h/1"):
        with pytest.raises(ValueError):
            Dsn.parse(bad)


def test_setup_without_a_dsn_does_nothing():
    assert setup_error_tracking(ServiceSettings()) is False


def test_a_bad_dsn_stops_the_start_rather_than_every_report():
    with pytest.raises(ValueError):
        setup_error_tracking(ServiceSettings(sentry_dsn="https://errors.example.com/1"))


def test_the_walk_scrubs_every_part_of_an_event_but_the_source_lines():
    event = {
        "request": {"url": f"https://x/api?token={JWT}", "query_string": f"stream_key={KEY}&page=2",
                    "headers": [["Authorization", f"Bearer {JWT}"], ["X-Stream-Key", KEY], ["Accept", "*/*"]],
                    "cookies": {"session": "c00kie"}, "data": {"login": "ada", "newPassword": "hunter2"},
                    "env": {"REMOTE_ADDR": "203.0.113.9"}},
        "extra": {"detail": f"key {KEY}", "nested": [{"api_key": "k-123"}]},
        "tags": {"service": "svc", "session_token": "t-456"},
        "contexts": {"app": {"dsn": "https://pub:sec@host/1"}},
        "user": {"id": "u1", "ip_address": "203.0.113.9"},
        "exception": {"values": [{"type": "ValueError", "value": f"bad key {KEY}", "stacktrace": {"frames": [
            {"filename": "app.py", "context_line": '    password = body["password"]', "vars": {"password": "pw1"}},
        ]}}]},
        "breadcrumbs": {"values": [{"message": f"GET /x?sig=abc123 {JWT}", "data": {"Cookie": "a=b"}}]},
    }
    out = scrub_event(event)
    text = repr(out)
    for secret in (JWT, KEY, "c00kie", "hunter2", "203.0.113.9", "k-123", "t-456", "sec@", "pw1", "abc123", "a=b"):
        assert secret not in text, secret
    assert out["request"]["query_string"] == "stream_key=[redacted]&page=2"
    assert out["request"]["headers"][2] == ["Accept", "*/*"]
    assert out["request"]["data"]["login"] == "ada"
    assert out["tags"]["service"] == "svc"
    assert "user" not in out and "cookies" not in out["request"]
    # the code around the failing line is the code's, left readable
    assert out["exception"]["values"][0]["stacktrace"]["frames"][0]["context_line"] == '    password = body["password"]'
    assert event["extra"]["detail"] == f"key {KEY}"  # a copy: the SDK's own event is not touched


def test_envelopes_are_parsed_with_and_without_lengths():
    body = (b'{"event_id":"a"}\n{"type":"event","length":12}\n{"x":"1\\n2"}\n\n'
            b'{"type":"attachment"}\nline\n')
    header, items = parse_envelope(body)
    assert header == {"event_id": "a"}
    assert items == [({"type": "event", "length": 12}, b'{"x":"1\\n2"}'), ({"type": "attachment"}, b"line")]
    for bad in (b"", b"nope\n", b"[1]\n", b'{}\n[2]\nx\n'):
        with pytest.raises(BadEnvelope):
            parse_envelope(bad)


@pytest.fixture
def tracking(envelope_receiver):
    settings = ServiceSettings(service_name="svc-test", sentry_dsn=envelope_receiver.dsn,
                               sentry_release="svc-test@9.9.9", sentry_environment="test")
    assert setup_error_tracking(settings) is True
    logger = logging.getLogger("servicekit.tests.errortracking")
    level, logger.level = logger.level, logging.INFO
    yield envelope_receiver, logger
    logger.setLevel(level)


def test_an_error_logged_inside_a_span_carries_that_trace_and_clean_breadcrumbs(tracking):
    import sentry_sdk

    receiver, logger = tracking
    tracer = TracerProvider().get_tracer("errortracking-test")
    with tracer.start_as_current_span("consume channel.created") as span:
        logger.info("handling", extra={"streamKey": KEY, "note": f"Authorization: Bearer {JWT}"})
        logger.error("consumer failed for %s", KEY)
    trace_id = format(span.get_span_context().trace_id, "032x")
    sentry_sdk.flush(timeout=5)
    event = receiver.wait_for(lambda e: e.get("logger") == "servicekit.tests.errortracking")
    assert event["contexts"]["trace"]["trace_id"] == trace_id == event["tags"]["trace_id"]
    assert event["contexts"]["trace"]["span_id"] == format(span.get_span_context().span_id, "016x")
    assert (event["tags"]["service"], event["release"], event["environment"]) == ("svc-test", "svc-test@9.9.9", "test")
    crumbs = [c for c in event["breadcrumbs"]["values"] if c.get("message") == "handling"]
    assert crumbs and crumbs[0]["data"]["streamKey"] == "[redacted]"
    assert KEY.encode() not in receiver.raw() and JWT.encode() not in receiver.raw()


def test_an_error_outside_any_span_keeps_the_sdks_trace(tracking):
    import sentry_sdk

    receiver, logger = tracking
    logger.error("no span here")
    sentry_sdk.flush(timeout=5)
    event = receiver.wait_for(lambda e: e.get("logger") == "servicekit.tests.errortracking")
    assert "trace_id" not in event["tags"]
    assert len(event["contexts"]["trace"]["trace_id"]) == 32


def test_an_empty_dsn_is_off(monkeypatch):
    monkeypatch.setenv("SENTRY_DSN", "")
    monkeypatch.setenv("SENTRY_RELEASE", " ")
    settings = ServiceSettings()
    assert settings.sentry_dsn is None and settings.sentry_release is None
    assert setup_error_tracking(settings) is False
