"""Error tracking: unexpected errors go to Sentry, or a self-hosted GlitchTip, through sentry-sdk.

Off unless `SENTRY_DSN` is set: the SDK is then not even imported and no path pays for it. When it
is set, `setup_error_tracking` (called once per process by create_app, the chat edge and the chat
persister) starts the SDK for errors only, with no performance tracing (spans are OpenTelemetry's),
no local variables and none of the SDK's personal-data defaults (cookies, client address, user). What
becomes an event: an exception no handler took (a route's 500, which still answers problem+json
without a trace) and every `log.error` / `log.exception` (the logging integration), with the
process's earlier log lines as breadcrumbs.

Every event carries the service name (tag `service`), the release (`SENTRY_RELEASE`, otherwise
`<service>@<package version>`), the environment (`SENTRY_ENVIRONMENT`) and the OpenTelemetry trace
it happened in (`contexts.trace.trace_id`, also the tag `trace_id`), so an error leads to its trace.

Scrubbing (`scrub_event`, also on every breadcrumb): the log redaction rules of servicekit.logging,
one rule set for logs and events. Any field named like a secret (password, token, secret,
authorization, cookie, stream key, API key) is replaced whole, wherever it sits: request headers and
body, extra, tags, contexts, breadcrumb data; every string is searched for JWTs, bearer
credentials, stream keys, a URL's password, secret query parameters and `name=value` pairs of
secret names: exception messages, log messages, URLs, query strings. Source lines of stack frames
are code, not data, and are left as they are.

The web client's reports reach the same DSN through `browser_router` (mounted by auth, routed by
the gateway): the page's Content-Security-Policy allows no other origin, so the service is the
page's Sentry "tunnel". It checks the envelope names this DSN, keeps only its event, scrubs it
with the same rules and forwards it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Request, Response

from servicekit.logging import REDACTED, SENSITIVE_KEY, redact_text
from servicekit.problems import problem_response, problem_responses

log = logging.getLogger("servicekit.errortracking")

# stack frames: file names, functions and the source lines around the failing one are the code's
# own text, read from disk, not request data (scrubbing `password = body["password"]` would only
# garble it); the SDK's and the modules' descriptions are package names and versions
_NOT_DATA = frozenset({"pre_context", "context_line", "post_context", "abs_path", "filename", "function",
                       "module", "package", "lineno", "colno", "in_app", "platform", "modules", "sdk"})
# request headers that name the client's address (what the SDK drops without PII)
_ADDRESS_HEADERS = ("forwarded", "-ip", "remote-", "via", "-user")


@dataclass(frozen=True)
class Dsn:
    """A Sentry DSN, `scheme://public_key[:secret]@host[:port][/prefix]/project_id`."""

    scheme: str
    public_key: str
    host: str  # with the port, if any
    path_prefix: str
    project_id: str

    @classmethod
    def parse(cls, value: str) -> Dsn:
        parts = urlsplit(value.strip())
        path, _, project = parts.path.rstrip("/").rpartition("/")
        if parts.scheme not in ("http", "https") or not parts.username or not parts.hostname \
                or not project.isdigit():
            raise ValueError("not a Sentry DSN (scheme://public_key@host/project_id)")
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        return cls(parts.scheme, parts.username, host, path, project)

    @property
    def public(self) -> str:
        """The DSN as a browser may see it: never the legacy secret key."""
        return f"{self.scheme}://{self.public_key}@{self.host}{self.path_prefix}/{self.project_id}"

    @property
    def envelope_url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path_prefix}/api/{self.project_id}/envelope/"


# ---- the SDK ---------------------------------------------------------------------------------

def setup_error_tracking(settings, *, service: str | None = None, version: str = "0.1.0") -> bool:
    """Start sentry-sdk for this process when `settings.sentry_dsn` is set; True when it did."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    service = service or settings.service_name
    dsn = settings.sentry_dsn.get_secret_value()
    Dsn.parse(dsn)  # a typo fails the start, not every report
    sentry_sdk.init(
        dsn=dsn,
        release=settings.sentry_release or f"{service}@{version}",
        environment=settings.sentry_environment,
        # what the SDK collects by itself (it supersedes send_default_pii / include_local_variables):
        # no user, no cookies, no client-address headers, no local variables, no SQL parameters;
        # headers, query and body do come, and scrub_event cleans them
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "denylist", "terms": list(_ADDRESS_HEADERS)}},
            "url_query_params": {"mode": "denylist"},
            "stack_frame_variables": False,
            "database_query_data": False,
            "queues": False,
        },
        # errors only: no transactions, no profiles, no trace headers on outgoing requests
        traces_sample_rate=None,
        trace_propagation_targets=[],
        # only what is named here and the SDK's defaults (logging, dedupe, excepthook, ...); not
        # its redis/httpx/sqlalchemy wrappers, which would sit on the chat send path
        auto_enabling_integrations=False,
        integrations=[StarletteIntegration(middleware_spans=False), FastApiIntegration(middleware_spans=False)],
        before_send=_before_send(service),
        before_breadcrumb=scrub_breadcrumb,
    )
    log.info("error tracking on", extra={"release": settings.sentry_release or f"{service}@{version}",
                                         "environment": settings.sentry_environment})
    return True


def error_tracking_active() -> bool:
    import sys

    sdk = sys.modules.get("sentry_sdk")
    return sdk is not None and sdk.get_client().is_active()


def shutdown_error_tracking(timeout: float = 2.0) -> None:
    """Send what is queued and stop the SDK (tests; a process's exit does this itself)."""
    import sys

    sdk = sys.modules.get("sentry_sdk")
    if sdk is None:
        return
    client = sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)
    sdk.get_global_scope().set_client(None)


def _before_send(service: str):
    def before_send(event: dict, hint: dict) -> dict:
        event = scrub_event(event)
        tags = event.get("tags")
        event["tags"] = tags = dict(tags) if isinstance(tags, dict) else {}
        tags["service"] = service
        _link_trace(event)
        return event

    return before_send


def _link_trace(event: dict) -> None:
    """The OpenTelemetry span current where the error was captured (the request's server span, a
    consumer's message span) becomes the event's trace, in place of the SDK's own unrelated id."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return
    trace_id, span_id = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    contexts = event.get("contexts")
    event["contexts"] = contexts = dict(contexts) if isinstance(contexts, dict) else {}
    trace_context = contexts.get("trace")
    previous: dict = trace_context if isinstance(trace_context, dict) else {}
    contexts["trace"] = {**{k: v for k, v in previous.items() if k not in ("parent_span_id",)},
                         "trace_id": trace_id, "span_id": span_id}
    event["tags"]["trace_id"] = trace_id


# ---- scrubbing -------------------------------------------------------------------------------

def _scrub(value: Any, key: str | None = None) -> Any:
    if key is not None:
        if key in _NOT_DATA:
            return value
        if SENSITIVE_KEY.search(key):
            return REDACTED if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        # headers as [name, value] pairs (a browser report, the SDK's raw form)
        if len(value) == 2 and isinstance(value[0], str) and SENSITIVE_KEY.search(value[0]):
            return [value[0], REDACTED]
        return [_scrub(v) for v in value]
    return value


def scrub_event(event: dict) -> dict:
    """A copy of a Sentry event with every secret the log rules know replaced by `[redacted]`."""
    out = _scrub(event)
    request = out.get("request")
    if isinstance(request, dict):
        query = request.get("query_string")
        if isinstance(query, str) and query:
            # a bare `a=1&token=x`: the query rule looks for the `?` or `&` before a name
            request["query_string"] = redact_text("?" + query)[1:]
        request.pop("cookies", None)
        request.pop("env", None)  # REMOTE_ADDR
    out.pop("user", None)
    return out


def scrub_breadcrumb(crumb: dict, hint: dict | None = None) -> dict:
    return _scrub(crumb)


# ---- the browser's reports -------------------------------------------------------------------

MAX_BROWSER_ENVELOPE_BYTES = 64 * 1024  # the gateway's body limit for it
BROWSER_REPORTS_PER_MINUTE = 30  # per client address
_ENVELOPE_TYPES = ("application/x-sentry-envelope", "text/plain")


class BadEnvelope(ValueError):
    pass


def parse_envelope(body: bytes) -> tuple[dict, list[tuple[dict, bytes]]]:
    """Sentry's envelope format: a JSON header line, then items, each a JSON header line and a
    payload of `length` bytes (or up to the next newline when the header gives no length)."""
    try:
        line, _, rest = body.partition(b"\n")
        header = orjson.loads(line)
        items: list[tuple[dict, bytes]] = []
        while rest.strip():
            line, _, rest = rest.partition(b"\n")
            if not line.strip():
                continue
            item_header = orjson.loads(line)
            length = item_header.get("length") if isinstance(item_header, dict) else None
            if isinstance(length, int) and 0 <= length <= len(rest):
                payload, rest = rest[:length], rest[length:]
                rest = rest[1:] if rest.startswith(b"\n") else rest
            else:
                payload, _, rest = rest.partition(b"\n")
            items.append((item_header, payload))
    except orjson.JSONDecodeError:
        raise BadEnvelope("not a Sentry envelope") from None
    if not isinstance(header, dict) or not all(isinstance(h, dict) for h, _ in items):
        raise BadEnvelope("not a Sentry envelope")
    return header, items


def browser_event(body: bytes, dsn: Dsn) -> tuple[str, bytes]:
    """Check a page's envelope and rebuild it: the configured DSN, its one event scrubbed, tagged
    `service: web`; anything else in it (sessions, attachments, replays) is dropped. Returns the
    event id and the envelope to forward."""
    header, items = parse_envelope(body)
    try:
        named = Dsn.parse(str(header.get("dsn") or ""))
    except ValueError:
        raise BadEnvelope("the envelope names no DSN") from None
    if (named.public_key, named.host, named.project_id) != (dsn.public_key, dsn.host, dsn.project_id):
        raise BadEnvelope("the envelope is for another project")
    events = [payload for h, payload in items if h.get("type") == "event"]
    if len(events) != 1:
        raise BadEnvelope("an envelope carries one event")
    try:
        event = orjson.loads(events[0])
    except orjson.JSONDecodeError:
        raise BadEnvelope("the event is not JSON") from None
    if not isinstance(event, dict):
        raise BadEnvelope("the event is not an object")
    event = scrub_event(event)
    event_id = str(event.get("event_id") or "")
    try:
        event_id = uuid.UUID(event_id).hex
    except ValueError:
        event_id = uuid.uuid4().hex
    event_tags = event.get("tags")
    tags: dict = event_tags if isinstance(event_tags, dict) else {}
    event.update(event_id=event_id, platform="javascript", tags={**tags, "service": "web"})
    payload = orjson.dumps(event)
    envelope = b"\n".join([
        orjson.dumps({"event_id": event_id, "dsn": dsn.public,
                      "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}),
        orjson.dumps({"type": "event", "content_type": "application/json", "length": len(payload)}),
        payload,
    ]) + b"\n"
    return event_id, envelope


def browser_router() -> APIRouter:
    """`GET /api/client/config` (what the web client needs to know, fetched when an error happens)
    and `POST /api/client/errors` (the page's envelopes, forwarded to the DSN)."""
    router = APIRouter(prefix="/api/client", tags=["client"])

    def configured(request: Request) -> Dsn | None:
        dsn = request.app.state.runtime.settings.sentry_dsn
        return Dsn.parse(dsn.get_secret_value()) if dsn is not None else None

    @router.get("/config", summary="Settings the web client reads",
                responses={200: {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["errorTracking"],
                    "properties": {"errorTracking": {
                        "type": ["object", "null"],
                        "description": "null when error tracking is off",
                        "required": ["dsn", "environment"],
                        "properties": {"dsn": {"type": "string"}, "environment": {"type": "string"},
                                       "release": {"type": ["string", "null"]}}}}}}}}})
    async def client_config(request: Request) -> Response:
        settings = request.app.state.runtime.settings
        dsn = configured(request)
        body = {"errorTracking": None if dsn is None else {
            "dsn": dsn.public, "environment": settings.sentry_environment, "release": settings.sentry_release}}
        return Response(orjson.dumps(body), media_type="application/json",
                        headers={"Cache-Control": "public, max-age=300"})

    @router.post("/errors", status_code=204, response_class=Response,
                 summary="An error report of the web client (a Sentry envelope), sent on to the DSN",
                 openapi_extra={"requestBody": {"required": True, "content": {
                     t: {"schema": {"type": "string"}} for t in _ENVELOPE_TYPES}}},
                 responses={204: {"description": "Forwarded"},
                            **problem_responses(400, 404, 413, 429, 502)})
    async def client_errors(request: Request) -> Response:
        dsn = configured(request)
        if dsn is None:
            return problem_response(404, "Error tracking is off.")
        runtime = request.app.state.runtime
        address = request.client.host if request.client else "unknown"
        if runtime.redis is not None:
            from servicekit.ratelimit import RateLimiter

            verdict = await RateLimiter(runtime.redis, prefix="client-errors").hit(
                address, BROWSER_REPORTS_PER_MINUTE, 60)
            if not verdict.allowed:
                return problem_response(429, "Too many error reports.",
                                        headers={"Retry-After": str(verdict.retry_after)})
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BROWSER_ENVELOPE_BYTES:
                return problem_response(413, "The report is too large.")
        try:
            event_id, envelope = browser_event(body, dsn)
        except BadEnvelope as exc:
            return problem_response(400, f"{exc}.")
        import httpx

        try:
            async with httpx.AsyncClient(timeout=5) as client:
                answer = await client.post(dsn.envelope_url, content=envelope, headers={
                    "Content-Type": "application/x-sentry-envelope",
                    "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={dsn.public_key}, "
                                     f"sentry_client=streamplatform-web/1.0"})
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("error report not forwarded", extra={"eventId": event_id, "error": type(exc).__name__})
            return problem_response(502, "The error tracker did not take the report.")
        return Response(status_code=204)

    return router
