"""The test collector speaks OTLP/HTTP as the SDK's exporter sends it (protobuf, `/v1/traces`)."""

import httpx
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from devstack.otlp import SpanCollector
from servicekit.observability import traces_url


def test_collector_receives_what_the_sdk_exports():
    with SpanCollector() as collector:
        # a provider of its own, not the process-wide one: other tests own that
        provider = TracerProvider(resource=Resource.create({"service.name": "probe"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=traces_url(collector.endpoint))))
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("outer", kind=trace.SpanKind.SERVER) as outer:
            with tracer.start_as_current_span("inner", attributes={"n": 3}):
                pass
        provider.shutdown()

        spans = collector.wait_for(lambda s: len(s) >= 2 and s, timeout=5)
        by_name = {s.name: s for s in spans}
        trace_id = format(outer.get_span_context().trace_id, "032x")
        assert by_name["outer"].trace_id == by_name["inner"].trace_id == trace_id
        assert by_name["inner"].parent_span_id == by_name["outer"].span_id
        assert by_name["outer"].parent_span_id is None and by_name["outer"].kind == "SERVER"
        assert by_name["inner"].attributes == {"n": 3} and by_name["inner"].service == "probe"
        assert collector.trace(trace_id) == spans

        assert httpx.post(f"{collector.endpoint}/v1/logs", content=b"").status_code == 404
        assert httpx.post(f"{collector.endpoint}/v1/traces", content=b"\xff\xff").status_code == 400
