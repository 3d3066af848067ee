"""Both test receivers read a body as the sender encoded it (the SDKs gzip or deflate what they
post) and print nothing per request: one handler base (devstack.receivers.QuietHandler) does it
for both, so a change there shows here for the OTLP collector and the envelope receiver alike."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack.envelopes import EnvelopeReceiver
from devstack.otlp import SpanCollector

ENCODINGS = {"": lambda b: b, "gzip": gzip.compress, "deflate": zlib.compress, "GZIP": gzip.compress}


def _export_request() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "probe"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("one"):
        pass
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def _envelope(receiver: EnvelopeReceiver, event_id: str) -> bytes:
    event = json.dumps({"event_id": event_id, "message": "hello"}).encode()
    return b"\n".join([json.dumps({"event_id": event_id, "dsn": receiver.dsn}).encode(),
                       json.dumps({"type": "event", "length": len(event)}).encode(), event])


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_collector_decodes_each_content_encoding(encoding, capfd):
    body = ENCODINGS[encoding](_export_request())
    with SpanCollector() as collector:
        r = httpx.post(f"{collector.endpoint}/v1/traces", content=body,
                       headers={"Content-Encoding": encoding} if encoding else {})
        assert r.status_code == 200
        assert [(s.service, s.name) for s in collector.spans] == [("probe", "one")]
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_envelope_receiver_decodes_each_content_encoding(encoding, capfd):
    with EnvelopeReceiver() as receiver:
        raw = _envelope(receiver, "a" * 32)
        r = httpx.post(f"http://127.0.0.1:{receiver.port}/api/{receiver.project}/envelope/",
                       content=ENCODINGS[encoding](raw), headers={"Content-Encoding": encoding} if encoding else {})
        assert r.status_code == 200 and r.json() == {"id": "a" * 32}
        [envelope] = receiver.envelopes
        assert envelope.raw == raw and envelope.events()[0]["message"] == "hello"
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_body_that_is_not_what_its_encoding_says_is_a_400(encoding, capfd):
    with SpanCollector() as collector, EnvelopeReceiver() as receiver:
        spans = httpx.post(f"{collector.endpoint}/v1/traces", content=_export_request(),
                           headers={"Content-Encoding": encoding})
        envelope = httpx.post(f"http://127.0.0.1:{receiver.port}/api/{receiver.project}/envelope/",
                              content=_envelope(receiver, "b" * 32), headers={"Content-Encoding": encoding})
        assert (spans.status_code, envelope.status_code) == (400, 400)
        assert collector.spans == [] and receiver.envelopes == []
        assert receiver.refused and receiver.refused[0].startswith("malformed")
        # a 404 and a 400 go through send_error, which logs through log_message too
        assert httpx.post(f"{collector.endpoint}/v1/logs", content=b"").status_code == 404
    assert capfd.readouterr().err == ""
