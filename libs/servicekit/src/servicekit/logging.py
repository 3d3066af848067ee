"""Structured JSON logs on stdout that cannot carry secrets.

Redaction works on two levels: keys whose name says "secret" are masked, and values that look like
bearer tokens, JWTs, stream keys, a URL's password, a secret query parameter or a `password=...`
pair are masked wherever they appear, so a careless `log.info(f"...{token}")` still does not leak.
The same rules scrub what error tracking sends (servicekit.errortracking): one rule set for both.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

SENSITIVE_KEY = re.compile(r"pass(word)?|secret|token|authorization|cookie|stream[_-]?key|api[_-]?key",
                           re.IGNORECASE)
JWT_LIKE = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")
BEARER = re.compile(r"(?i)bearer\s+[\w\-.~+/=]+")
# the password in a URL's userinfo (nats://user:pass@host, redis://:pass@host, postgresql://...)
URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")
# the platform's stream keys: `live_` + URL-safe base64 (channels_service.streamkeys.service.new_key;
# channels' tests check that every key it issues matches). The look-ahead asks for a capital or a
# digit, which 43 random characters always have and names like `live_window_seconds` do not.
STREAM_KEY = re.compile(r"\blive_(?=[\w-]*[A-Z0-9])[A-Za-z0-9_-]{16,}")
# a query (or fragment) parameter whose name says credential (?token=, &stream_key=, &sig=, OAuth's
# ?code=, #access_token=); web/errors.js applies the same rules in the browser
QUERY_SECRET = re.compile(r"(?i)([?&#][\w.-]*(?:key|token|secret|pass|sig|code|auth|credential|session)"
                          r"[\w.-]*=)[^&#\s\"'<>]+")
# `password=hunter2`, `"refresh_token": "..."`, `stream-key: ...` in free text (a form body, a
# repr'd dict, an exception message); a value already reading `Bearer [redacted]` is left alone
SECRET_PAIR = re.compile(
    r"(?i)(?<![\w-])([\"']?[\w.-]*?(?:passw(?:or)?d|passphrase|secret|token|(?:api|stream|access|private)[_-]?key"
    r"|signature|credential)[\w.-]*[\"']?\s*[:=]\s*[\"']?)(?!bearer\s|\[redacted\])[^\s\"'&;,)}\]]+")
# a Cookie / Set-Cookie header written out: the whole rest of the line
COOKIE_LINE = re.compile(r"(?i)\b((?:set-)?cookie[\"']?\s*[:=]\s*)(?!\[redacted\])[^\r\n]+")
REDACTED = "[redacted]"

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def redact_text(text: str) -> str:
    text = URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = BEARER.sub("Bearer " + REDACTED, JWT_LIKE.sub(REDACTED, text))
    text = STREAM_KEY.sub(REDACTED, text)
    text = COOKIE_LINE.sub(lambda m: m.group(1) + REDACTED, text)
    text = QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    return SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, text)


def redact(value, key: str | None = None):
    if key is not None and SENSITIVE_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["traceId"] = format(ctx.trace_id, "032x")
            entry["spanId"] = format(ctx.span_id, "016x")
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints the request line with its query string: ours logs paths only
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
