"""Database, Valkey and HTTP-client spans: a process that exports spans (setup_tracing with an
OTLP endpoint) shows its SQL statements, Valkey commands and outgoing HTTP requests as client
spans under the span that caused them, against the real PostgreSQL and Valkey of the test servers.

It runs in a child process: instrumenting redis-py and httpx is process-wide, and the suite's
own process must keep its clients unwrapped."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from devstack.otlp import SpanCollector

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    import httpx
    from opentelemetry import trace
    from redis.asyncio import Redis
    from servicekit.db import Database
    from servicekit.observability import setup_tracing

    db_url, redis_url, endpoint = sys.argv[1:4]
    setup_tracing("tracing-clients-test", endpoint)

    async def main():
        db = Database(db_url)
        redis = Redis.from_url(redis_url)
        with trace.get_tracer("test").start_as_current_span("caller"):
            await db.ping()
            await redis.set("tracing-clients-test", "secret-value-not-in-spans")
            async with httpx.AsyncClient() as client:
                await client.get(endpoint.rstrip("/") + "/healthz-of-nobody")
        await redis.aclose()
        await db.dispose()

    asyncio.run(main())
    trace.get_tracer_provider().force_flush()
""")


def _run(kit_db_url: str, redis_url: str, endpoint: str) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT, kit_db_url, redis_url, endpoint],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_sql_valkey_and_http_calls_are_client_spans_of_their_caller(kit_db_url, redis_url):
    with SpanCollector() as collector:
        _run(kit_db_url, redis_url, collector.endpoint)
        caller = collector.wait_for(lambda spans: next((s for s in spans if s.name == "caller"), None))
        trace = collector.wait_for(lambda spans: (lambda t: t if len(t) >= 4 else None)(
            [s for s in spans if s.trace_id == caller.trace_id]))
    children = [s for s in trace if s.parent_span_id == caller.span_id]
    by_system = {s.attributes.get("db.system"): s for s in children if s.attributes.get("db.system")}
    assert {"postgresql", "redis"} <= by_system.keys(), [(s.name, s.attributes) for s in children]
    assert by_system["postgresql"].kind == by_system["redis"].kind == "CLIENT"
    http = [s for s in children if s.kind == "CLIENT" and "healthz-of-nobody" in str(
        s.attributes.get("url.full") or s.attributes.get("http.url"))]
    assert http, [(s.name, s.attributes) for s in children]
    # Valkey values never reach a span (the instrumentation writes `SET ? ?`)
    assert not any("secret-value-not-in-spans" in str(s.attributes) for s in trace)


def test_no_client_spans_without_an_exporter(kit_db_url, redis_url):
    # spans nobody exports cost their wrappers on hot paths: without an endpoint nothing is wrapped
    script = SCRIPT.replace('setup_tracing("tracing-clients-test", endpoint)',
                            'setup_tracing("tracing-clients-test", None)\n'
                            'import redis.asyncio.client as c, sqlalchemy\n'
                            'assert not hasattr(c.Redis.execute_command, "__wrapped__")\n'
                            'assert not hasattr(httpx.AsyncHTTPTransport.handle_async_request, "__wrapped__")')
    result = subprocess.run([sys.executable, "-c", script, kit_db_url, redis_url, "http://127.0.0.1:9/"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert "AssertionError" not in result.stderr, result.stderr
