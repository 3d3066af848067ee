"""JetStream provisioning and trace propagation through NATS headers."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from contracts.subjects import CHAT_STREAM, EVENTS_STREAM
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import StorageType, StreamConfig
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from servicekit.messaging import (ensure_streams, extract_trace_context, inject_trace_headers, may_configure,
                                  split_credentials)


class CountingJetStream:
    """Delegates to a real JetStream context and records stream-changing calls."""

    def __init__(self, js):
        self._js = js
        self.changes: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self._js, name)
        if name not in ("add_stream", "update_stream", "delete_stream"):
            return attr

        async def recorded(*args, **kwargs):
            self.changes.append(name)
            return await attr(*args, **kwargs)

        return recorded


async def test_a_service_that_may_not_configure_streams_waits_for_them_and_changes_nothing(nc):
    """Only one NATS user may create or update streams (contracts.access); another service waits
    for its streams and leaves one that differs from the contract to that one."""
    js = CountingJetStream(nc.jetstream())
    waiting = asyncio.ensure_future(ensure_streams(js, [EVENTS_STREAM], configure=False))
    await asyncio.sleep(1.2)
    assert not waiting.done() and js.changes == []
    # created by the configuring service, with another duplicate window than the contract's
    await ensure_streams(nc.jetstream(), [dataclasses.replace(EVENTS_STREAM, duplicate_window_seconds=60)])
    await asyncio.wait_for(waiting, 5)
    assert js.changes == []
    assert (await js.stream_info("EVENTS")).config.duplicate_window == 60


def test_who_configures_streams_follows_the_user_in_the_url():
    assert may_configure("nats://channels:pw@nats:4222,nats://channels:pw@nats-1:4222")
    assert not may_configure("nats://chat:pw@nats:4222")
    assert not may_configure("nats://chat-edge:pw@nats:4222")
    assert may_configure("nats://admin:pw@nats:4222")  # the operator's user may do anything
    assert may_configure("nats://127.0.0.1:4222")  # a server without users: every service as before


def test_credentials_come_out_of_every_url_of_a_cluster():
    servers, user, password = split_credentials("nats://chat-edge:p%40ss@a:4222, nats://chat-edge:p%40ss@b:4223")
    assert servers == ["nats://a:4222", "nats://b:4223"] and (user, password) == ("chat-edge", "p@ss")
    assert split_credentials("nats://127.0.0.1:4222") == (["nats://127.0.0.1:4222"], None, None)


async def test_ensure_streams_creates_events_as_specified(nc):
    js = CountingJetStream(nc.jetstream())
    await ensure_streams(js, [EVENTS_STREAM])
    assert js.changes == ["add_stream"]

    config = (await js.stream_info("EVENTS")).config
    assert config.storage == StorageType.FILE
    assert config.duplicate_window == EVENTS_STREAM.duplicate_window_seconds == 3600
    assert config.max_age == EVENTS_STREAM.max_age_seconds
    assert set(config.subjects) == set(EVENTS_STREAM.subjects)


class SlowJetStream:
    """A JetStream whose API times out `failures` times first, as a cluster electing its meta leader does."""

    def __init__(self, js, failures: int):
        self._js, self.failures, self.calls = js, failures, 0

    def __getattr__(self, name):
        attr = getattr(self._js, name)

        async def flaky(*args, **kwargs):
            self.calls += 1
            if self.failures:
                self.failures -= 1
                raise NatsTimeout
            return await attr(*args, **kwargs)

        return flaky


async def test_ensure_streams_waits_for_a_jetstream_that_does_not_answer_yet(nc):
    js = SlowJetStream(nc.jetstream(), failures=2)
    await ensure_streams(js, [EVENTS_STREAM])
    assert js.failures == 0
    assert (await nc.jetstream().stream_info("EVENTS")).config.name == "EVENTS"


async def test_ensure_streams_gives_up_after_its_patience(nc):
    js = SlowJetStream(nc.jetstream(), failures=1000)
    with pytest.raises(NatsTimeout):
        await ensure_streams(js, [EVENTS_STREAM], patience=1.0)
    assert 2 <= js.calls <= 3


async def test_ensure_streams_twice_is_a_no_op(nc):
    js = CountingJetStream(nc.jetstream())
    await ensure_streams(js, [EVENTS_STREAM, CHAT_STREAM])
    await js.publish("user.registered", b"{}", headers={"Nats-Msg-Id": "keep-me"})
    before = await js.stream_info("EVENTS")
    js.changes.clear()

    await ensure_streams(js, [EVENTS_STREAM, CHAT_STREAM])

    assert js.changes == []
    after = await js.stream_info("EVENTS")
    assert after.created == before.created
    assert after.state.messages == 1
    assert (await js.stream_info("CHAT")).config.duplicate_window == CHAT_STREAM.duplicate_window_seconds


async def test_ensure_streams_brings_a_drifted_stream_back_to_spec_keeping_its_messages(nc):
    js = CountingJetStream(nc.jetstream())
    drifted = StreamConfig(name="EVENTS", subjects=["user.>"], storage=StorageType.FILE,
                           duplicate_window=120.0, max_age=3600.0, num_replicas=1)
    await js.add_stream(drifted)
    await js.publish("user.registered", b"{}", headers={"Nats-Msg-Id": "old"})
    js.changes.clear()

    await ensure_streams(js, [EVENTS_STREAM])

    assert js.changes == ["update_stream"]
    info = await js.stream_info("EVENTS")
    assert info.config.duplicate_window == 3600
    assert info.config.max_age == EVENTS_STREAM.max_age_seconds
    assert set(info.config.subjects) == set(EVENTS_STREAM.subjects)
    assert info.state.messages == 1


async def test_ensure_streams_applies_a_changed_retention(nc):
    js = nc.jetstream()
    await ensure_streams(js, [EVENTS_STREAM])
    longer = dataclasses.replace(EVENTS_STREAM, max_age_seconds=EVENTS_STREAM.max_age_seconds * 2)
    await ensure_streams(js, [longer])
    assert (await js.stream_info("EVENTS")).config.max_age == longer.max_age_seconds


def test_trace_headers_round_trip():
    tracer = TracerProvider().get_tracer("messaging-test")
    with tracer.start_as_current_span("publish") as span:
        headers = inject_trace_headers({"Ce-Type": "user.registered"})
    assert headers["Ce-Type"] == "user.registered"
    assert "traceparent" in headers

    context = extract_trace_context(headers)
    remote = trace.get_current_span(context).get_span_context()
    assert remote.is_remote
    assert remote.trace_id == span.get_span_context().trace_id
    assert remote.span_id == span.get_span_context().span_id

    # a consumer's span started from that context joins the same trace
    with tracer.start_as_current_span("consume", context=context) as child:
        assert child.get_span_context().trace_id == span.get_span_context().trace_id


def test_inject_outside_a_span_adds_nothing_and_copies():
    original = {"Ce-Type": "user.registered"}
    headers = inject_trace_headers(original)
    assert headers == original and headers is not original
    assert inject_trace_headers(None) == {}
    assert not trace.get_current_span(extract_trace_context(None)).get_span_context().is_valid


def _recording_provider():
    """The process's SDK provider (installed once; OTel refuses a second) with an in-memory exporter."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_request_and_its_handling_are_one_trace(nc):
    """A core-NATS request carries the caller's trace; the responder's span continues it."""
    import nats as nats_client
    from servicekit.messaging import handling_span, request

    exporter = _recording_provider()
    responder = await nats_client.connect(nc.connected_url.geturl())
    try:
        async def answer(msg):
            with handling_span(msg, "answer trace.test"):
                await msg.respond(b"pong")

        await responder.subscribe("trace.test", cb=answer)
        await responder.flush()
        with trace.get_tracer("test").start_as_current_span("caller") as caller:
            reply = await request(nc, "trace.test", b"ping", timeout=5)
        assert reply.data == b"pong"
    finally:
        await responder.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    exporter.shutdown()
    asked, answered = spans["request trace.test"], spans["answer trace.test"]
    trace_id = caller.get_span_context().trace_id
    assert asked.context.trace_id == answered.context.trace_id == trace_id
    assert asked.parent.span_id == caller.get_span_context().span_id
    assert answered.parent.span_id == asked.context.span_id
    assert asked.kind == trace.SpanKind.CLIENT and answered.kind == trace.SpanKind.SERVER


def test_otlp_endpoint_is_a_base_url():
    from servicekit.observability import traces_url

    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


async def test_an_events_stream_that_still_holds_stream_viewers_is_narrowed_and_viewers_keeps_one_per_stream(nc):
    """Upgrade of a deployment from before VIEWERS: EVENTS captured `stream.>` (viewer counts too).
    Ensuring EVENTS first narrows it, keeping its messages, so VIEWERS can take the counts."""
    from contracts.subjects import VIEWERS_STREAM

    js = nc.jetstream()
    old = StreamConfig(name="EVENTS", subjects=["user.>", "channel.>", "media.>", "stream.>", "chat.report.>"],
                       storage=StorageType.FILE, duplicate_window=3600.0, max_age=float(EVENTS_STREAM.max_age_seconds),
                       num_replicas=1)
    await js.add_stream(old)
    await js.publish("stream.started", b"{}")

    await ensure_streams(js, [EVENTS_STREAM, VIEWERS_STREAM])

    assert (await js.stream_info("EVENTS")).state.messages == 1
    for count in range(3):
        await js.publish("stream.viewers.s1", str(count).encode())
    await js.publish("stream.viewers.s2", b"7")
    info = await js.stream_info("VIEWERS", subjects_filter="stream.viewers.*")
    assert info.config.max_msgs_per_subject == 1
    assert info.state.subjects == {"stream.viewers.s1": 1, "stream.viewers.s2": 1}
    assert (await js.get_last_msg("VIEWERS", "stream.viewers.s1")).data == b"2"
    assert (await js.stream_info("EVENTS")).state.messages == 1
