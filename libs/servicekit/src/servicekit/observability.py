"""Health, readiness, Prometheus metrics and OpenTelemetry tracing for every service."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext

from fastapi import APIRouter, FastAPI, Request, Response
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware

from servicekit.problems import problem_response

HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency by route template",
    ["service", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

ReadinessCheck = Callable[[], Awaitable[bool]]


class NotReady(Exception):
    """Raised by a readiness check to say what is wrong in its own words (shown in /readyz)."""

_tracing_configured = False
_exporting = False


def exporting_spans() -> bool:
    """True when this process sends spans somewhere: hot paths (a chat edge's fan-out, the
    persister's batches) open per-message spans only then."""
    return _exporting


def setup_tracing(service: str, otlp_endpoint: str | None = None) -> None:
    """Install a tracer provider once per process; spans go to OTLP when an endpoint is set."""
    global _tracing_configured, _exporting
    if _tracing_configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(otlp_endpoint))))
        _exporting = True
        _instrument_clients()
    trace.set_tracer_provider(provider)
    _tracing_configured = True


def _instrument_clients() -> None:
    """Valkey commands (redis-py, pipelines included) and outgoing HTTP (httpx) as client spans.
    Only while spans go somewhere: a span nobody exports still costs its wrapper on the chat send
    path. Database spans are per engine (`trace_engine`)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()


def trace_engine(engine) -> None:
    """SQL statements of this SQLAlchemy engine as client spans, when spans are exported. The
    instrumentor's own hook patches `create_async_engine`, which servicekit.db imported by name
    before tracing was set up, so the engine is handed over instead."""
    if not _exporting:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # the instrumentor declares SQLAlchemy < 2.1; its engine events are unchanged in 2.1
    # (libs/servicekit/tests/test_tracing_clients.py checks the spans on the version we run)
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False, skip_dep_check=True)


def traces_url(otlp_endpoint: str) -> str:
    """`OTEL_EXPORTER_OTLP_ENDPOINT` is the collector's base URL (`http://collector:4318`) and the
    exporter posts to `<base>/v1/traces`; the SDK only appends that path when it reads the variable
    itself, and an endpoint handed to it is taken as the full URL (spans to `/` are 404s)."""
    base = otlp_endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def _route_template(request: Request) -> str:
    """The matched route's template (set by the router during dispatch), never the raw path."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class TelemetryMiddleware(BaseHTTPMiddleware):
    """One server span per request (continuing an incoming `traceparent`; FastAPI's own when it
    makes one) and a latency sample labelled by route template, not raw path, so ids do not
    explode the label set."""

    def __init__(self, app, service: str):
        super().__init__(app)
        self.service = service
        self.tracer = trace.get_tracer("servicekit.http")

    async def dispatch(self, request: Request, call_next):
        if request.url.path in ("/metrics", "/healthz", "/readyz"):
            return await call_next(request)
        start = time.perf_counter()
        status = 500
        # FastAPI (0.165+) opens the server span itself, continuing `traceparent`, and hangs the
        # endpoint's spans under it; a second one here would start an orphan trace
        own_span = not trace.get_current_span().get_span_context().is_valid
        span_context = self.tracer.start_as_current_span(
            f"{request.method}", context=propagate.extract(dict(request.headers)), kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": request.method}) if own_span else nullcontext()
        with span_context as span:
            try:
                response = await call_next(request)
                status = response.status_code
                if span is not None:
                    span.set_attribute("http.response.status_code", status)
                return response
            finally:
                route = _route_template(request)
                if span is not None:
                    span.update_name(f"{request.method} {route}")
                    span.set_attribute("http.route", route)
                HTTP_LATENCY.labels(self.service, request.method, route, str(status)).observe(
                    time.perf_counter() - start)


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz():
        failed = []
        for name, check in checks.items():
            try:
                if not await check():
                    failed.append(f"{name} not answering")
            except NotReady as exc:
                failed.append(str(exc))
            except Exception:
                failed.append(f"{name} not answering")
        if failed:
            return problem_response(503, "Not ready: " + "; ".join(failed) + ".")
        return {"status": "ready", "checks": sorted(checks)}

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def instrument(app: FastAPI, service: str) -> None:
    app.add_middleware(TelemetryMiddleware, service=service)
