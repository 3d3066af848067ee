"""JSON logs that cannot carry secrets."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from servicekit.logging import JsonFormatter, configure_logging

JWT = ("eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAwMDB9"
       ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmU")


@pytest.fixture
def emit():
    """Log through a real logger into JsonFormatter; returns the parsed JSON line."""
    logger = logging.getLogger("servicekit.tests.logging")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(JsonFormatter("test-svc"))
    logger.handlers[:] = [handler]

    def _emit(msg, *args, level=logging.INFO, **kwargs) -> dict:
        logger.log(level, msg, *args, **kwargs)
        return json.loads(lines[-1])

    yield _emit
    logger.handlers[:] = []


def test_output_is_one_json_object_with_the_basics(emit):
    entry = emit("user %s signed in", "ada", extra={"userId": "u1", "attempt": 2})
    assert entry["message"] == "user ada signed in"
    assert entry["level"] == "info"
    assert entry["service"] == "test-svc"
    assert entry["logger"] == "servicekit.tests.logging"
    assert entry["time"].endswith("Z")
    assert entry["userId"] == "u1" and entry["attempt"] == 2
    assert "traceId" not in entry


def test_non_json_values_do_not_break_the_line(emit):
    entry = emit("odd values", extra={"kind": set, "obj": object(), "raw": b"bytes"})
    assert entry["obj"].startswith("<object object")
    assert "set" in entry["kind"]


@pytest.mark.parametrize("field", ["password", "newPassword", "client_secret", "refreshToken", "stream_key",
                                   "streamKey", "authorization", "Cookie", "api_key"])
def test_fields_named_like_secrets_are_redacted(emit, field):
    entry = emit("request", extra={field: "hunter2-supersecret"})
    assert entry[field] == "[redacted]"
    assert "hunter2" not in json.dumps(entry)


def test_nested_secret_fields_are_redacted(emit):
    entry = emit("request", extra={"request": {"headers": {"Authorization": "Bearer abc.def"},
                                               "body": {"username": "ada", "password": "hunter2"},
                                               "items": [{"stream_key": "live_123"}]}})
    line = json.dumps(entry)
    assert "hunter2" not in line and "abc.def" not in line and "live_123" not in line
    assert entry["request"]["body"]["username"] == "ada"


def test_jwt_in_the_message_is_redacted(emit):
    entry = emit(f"refresh failed for token {JWT} (expired)")
    assert JWT not in json.dumps(entry)
    assert "eyJ" not in entry["message"]
    assert entry["message"].startswith("refresh failed for token [redacted]")


def test_jwt_in_a_message_argument_or_extra_value_is_redacted(emit):
    entry = emit("got %s", JWT, extra={"detail": f"header was {JWT}", "list": [JWT]})
    assert JWT not in json.dumps(entry)


@pytest.mark.parametrize("text", ["Authorization: Bearer x", "authorization: bearer s3cr3t-t0k3n",
                                  "curl -H 'Authorization: Bearer abc/def+ghi='"])
def test_bearer_credentials_are_redacted(emit, text):
    entry = emit(f"upstream said {text}", extra={"note": text})
    line = json.dumps(entry)
    for secret in ("s3cr3t", "abc/def", "Bearer x\""):
        assert secret not in line
    assert "Bearer [redacted]" in entry["message"]
    assert "Bearer [redacted]" in entry["note"]


@pytest.mark.parametrize("url", ["nats://channels:pw-9f3a@nats:4222,nats://channels:pw-9f3a@nats-1:4222",
                                 "redis://:pw-9f3a@valkey:6379/0", "postgresql+psycopg://platform:pw-9f3a@db/x"])
def test_a_password_in_a_url_is_redacted(emit, url):
    entry = emit(f"cannot reach {url}", extra={"server": url})
    assert "pw-9f3a" not in json.dumps(entry)
    # the rest stays readable: which server, which user
    assert "[redacted]@" in entry["message"] and entry["server"].split("[redacted]@")[0] in url


def test_exception_text_is_redacted(emit):
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        entry = emit("failed", level=logging.ERROR, exc_info=True)
    assert "ValueError" in entry["exception"]
    assert JWT not in entry["exception"]


def test_trace_ids_are_added_inside_a_span(emit):
    tracer = TracerProvider().get_tracer("logging-test")
    with tracer.start_as_current_span("work") as span:
        entry = emit("inside")
    assert entry["traceId"] == format(span.get_span_context().trace_id, "032x")
    assert entry["spanId"] == format(span.get_span_context().span_id, "016x")


def test_configure_logging_installs_the_json_formatter_on_root(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("svc", "debug")
        logging.getLogger("anything").info("hello", extra={"password": "pw"})
        line = capsys.readouterr().out.strip().splitlines()[-1]
        entry = json.loads(line)
        assert entry["service"] == "svc" and entry["password"] == "[redacted]"
        assert logging.getLogger("uvicorn.access").disabled
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        logging.getLogger("uvicorn.access").disabled = False


STREAM_KEY = "live_" + "Q3x9-vT_" * 5 + "k2Z"  # the shape channels issues: live_ + 43 URL-safe characters


@pytest.mark.parametrize("text", [f"publish refused for {STREAM_KEY}", f"rtmp://ingest/live/{STREAM_KEY}",
                                  f"srt://ingest:9000?streamid={STREAM_KEY}"])
def test_anything_shaped_like_a_stream_key_is_redacted(emit, text):
    entry = emit(text, extra={"detail": text})
    assert STREAM_KEY not in json.dumps(entry)
    assert "[redacted]" in entry["message"]


def test_names_that_only_start_like_a_stream_key_stay(emit):
    entry = emit("live_window_seconds_for_the_directory_listing changed")
    assert entry["message"] == "live_window_seconds_for_the_directory_listing changed"


@pytest.mark.parametrize("text, kept", [
    ("GET /cb?code=abc123&state=s1", "state=s1"), ("https://x/hls?token=t0k&_HLS_msn=4", "_HLS_msn=4"),
    ("body was password=hunter2&login=ada", "login=ada"), ("{'refresh_token': 'r3fr', 'user': 'ada'}", "'user': 'ada'"),
    ("Cookie: session=c00kie; theme=dark", "Cookie: [redacted]"), ("X-Stream-Key: k3y-v4l", "X-Stream-Key: [redacted]"),
])
def test_secret_query_parameters_and_pairs_are_redacted(emit, text, kept):
    entry = emit(text)
    for secret in ("abc123", "t0k", "hunter2", "r3fr", "c00kie", "k3y-v4l"):
        assert secret not in entry["message"]
    assert kept in entry["message"]


def test_ordinary_sentences_about_tokens_stay_readable(emit):
    assert emit("the token expired; 3 passed, exit code=1")["message"] == "the token expired; 3 passed, exit code=1"
