"""A tiny OTLP/HTTP trace receiver for tests: service processes export their spans to it (point
`OTEL_EXPORTER_OTLP_ENDPOINT` at `collector.endpoint`) and a test asks which services took part in
a trace. It speaks the protocol a real collector speaks (protobuf `ExportTraceServiceRequest`
posted to `/v1/traces`), so the processes run exactly as in production; only the storage is a list.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.receivers import LoopbackReceiver, QuietHandler

# the SDK waits this long between batches; the default (5 s) would make every trace test wait
FAST_EXPORT_ENV = {"OTEL_BSP_SCHEDULE_DELAY": "200"}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    attributes: dict = field(hash=False, compare=False)


def _attribute_value(value) -> object:
    which = value.WhichOneof("value")
    return getattr(value, which) if which and which not in ("array_value", "kvlist_value") else None


def decode_export_request(body: bytes) -> list[Span]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _attribute_value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append(Span(
                    service=service, name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                    parent_span_id=s.parent_span_id.hex() or None,
                    kind=PbSpan.SpanKind.Name(s.kind).removeprefix("SPAN_KIND_"),
                    attributes={a.key: _attribute_value(a.value) for a in s.attributes}))
    return spans


class SpanCollector(LoopbackReceiver):
    """`with SpanCollector() as c:` listens on a free loopback port until the block ends."""

    thread_name = "otlp-collector"

    def __init__(self, port: int | None = None):
        super().__init__(port)
        self._spans: list[Span] = []
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it (the exporter adds /v1/traces)."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, **FAST_EXPORT_ENV}

    def start(self) -> SpanCollector:
        collector = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.rstrip("/") != "/v1/traces":
                    self.send_error(404)
                    return
                body = self.read_body()
                try:
                    spans = decode_export_request(self.decoded(body))
                except Exception:  # a malformed export is the exporter's bug: answer like a collector
                    self.send_error(400)
                    return
                with collector._lock:
                    collector._spans.extend(spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.serve(Handler)
        return self

    @property
    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[Span]:
        return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(self, predicate: Callable[[list[Span]], object], timeout: float = 15.0):
        """Poll until `predicate(spans)` is truthy and return its value; raise with what was seen."""
        deadline = time.monotonic() + timeout
        while True:
            found = predicate(self.spans)
            if found:
                return found
            if time.monotonic() > deadline:
                seen = sorted({(s.service, s.name) for s in self.spans})
                raise TimeoutError(f"no matching spans within {timeout}s; saw {len(seen)} kinds: {seen[:60]}")
            time.sleep(0.1)
