"""One trace follows a go-live (and a chat message) across HTTP, NATS, the outbox and the consumers.

Every service of the e2e stack exports its spans over OTLP/HTTP to a collector the conftest starts
(`devstack.otlp.SpanCollector`), so the processes run exactly as in production. What "one trace"
means for a go-live (docs/architecture.md, "Tracing"): it starts at nginx-rtmp's on_publish
callback to the media gateway (the encoder speaks RTMP, which carries no trace context) and
contains the key authorization by channels (NATS request with `traceparent` in its headers), the
`media.ingest.connected` event handled by streams (context stored with the outbox row) and the
`stream.*` event streams publishes in turn, handled by channels.
"""

import asyncio
import shutil
import time

import orjson
import pytest
import websockets

from .helpers import Creator, connected_event, create_channel, encoder, register, rtmp_url, stop, until

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]


def _one(spans, service: str, predicate, what: str):
    found = [s for s in spans if s.service == service and predicate(s)]
    assert found, f"no {what} span of {service} in the trace; it has: " + ", ".join(
        sorted(f"{s.service}:{s.name}" for s in spans))
    return found[0]


def _descends(span, ancestor, trace) -> bool:
    """`ancestor` is on `span`'s parent chain (FastAPI puts its own operation spans in between)."""
    by_id = {s.span_id: s for s in trace}
    parent = span.parent_span_id
    while parent is not None:
        if parent == ancestor.span_id:
            return True
        parent = by_id[parent].parent_span_id if parent in by_id else None
    return False


def _is_on_publish(span) -> bool:
    return (span.service == "media-gateway" and span.kind == "SERVER"
            and span.attributes.get("http.route") == "/hooks/rtmp/publish")


def test_go_live_is_one_trace_across_services(gateway, stack, span_collector):
    creator = Creator(gateway, "tr")
    channel, key = creator.channel, creator.keys()["streamKey"]
    creator.go_live("Traced")

    publisher = encoder(rtmp_url(stack, key), seconds=15, size="320x240", rate=15, audio=False)
    try:
        connected = asyncio.run(connected_event(stack.nats.url, channel["id"], 20))
    finally:
        stop(publisher)

    # streams' consumer span names the event it handled: that is the way into the trace
    consume = span_collector.wait_for(lambda spans: next(
        (s for s in spans
         if s.service == "streams" and s.attributes.get("messaging.message.id") == connected.id), None))

    def complete(spans):
        trace = [s for s in spans if s.trace_id == consume.trace_id]
        stream_event_consumed = any(s.service == "channels" and s.name.startswith("consume stream.")
                                    for s in trace)
        return trace if stream_event_consumed and any(_is_on_publish(s) for s in trace) else None

    trace = span_collector.wait_for(complete, timeout=20)

    # the root: nginx-rtmp's callback, answered with the redirect to the opaque name
    on_publish = _one(trace, "media-gateway", _is_on_publish, "on_publish")
    assert on_publish.parent_span_id is None
    assert on_publish.attributes.get("http.response.status_code") == 302
    # the key check: a NATS request from inside the callback, answered by channels in the same trace
    ask = _one(trace, "media-gateway", lambda s: s.name == "request channels.ingest.authorize",
               "authorize request")
    assert ask.kind == "CLIENT" and _descends(ask, on_publish, trace)
    answer = _one(trace, "channels", lambda s: s.name == "answer channels.ingest.authorize",
                  "authorize answer")
    assert answer.kind == "SERVER" and answer.parent_span_id == ask.span_id
    # the event staged in the callback's transaction carries the callback's trace through the outbox
    assert consume.name == "consume media.ingest.connected" and consume.kind == "CONSUMER"
    assert _descends(consume, on_publish, trace)
    # and what streams published while handling it continues from there
    went_live = _one(trace, "channels", lambda s: s.name.startswith("consume stream."),
                     "stream event consumer")
    assert _descends(went_live, consume, trace)
    # inside the callback: the database, Valkey (the refused-publish limiter) and the HTTP client
    # (nginx-rtmp's stat, polled until the transcoders play) each show as client spans
    sql = _one(trace, "media-gateway", lambda s: s.attributes.get("db.system") == "postgresql"
               and _descends(s, on_publish, trace), "database")
    assert sql.kind == "CLIENT"
    _one(trace, "media-gateway", lambda s: s.attributes.get("db.system") == "redis"
         and _descends(s, on_publish, trace), "Valkey")
    _one(trace, "media-gateway", lambda s: s.kind == "CLIENT" and "stat" in str(
        s.attributes.get("url.full") or s.attributes.get("http.url") or "")
         and _descends(s, on_publish, trace), "HTTP client")
    # the stream key is in no span (names and attributes leave the platform for a collector)
    assert not any(key in s.name or key in str(s.attributes) for s in span_collector.spans)


async def _send_across_edges(ports: tuple[int, int], tokens: tuple[str, str], channel_id: str) -> dict:
    """The sender on the first edge, a reader on the second; returns the sender's chat:ack once the
    reader has the message."""

    async def joined(port: int, token: str):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10, ping_interval=None)
        await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        await ws.send(orjson.dumps({"type": "chat:join", "channelId": channel_id}).decode())
        await _next_event(ws, "chat:history")
        return ws

    sender, reader = await joined(ports[0], tokens[0]), await joined(ports[1], tokens[1])
    try:
        send = {"type": "chat:send", "content": "traced hello", "nonce": "t-1"}
        await sender.send(orjson.dumps(send).decode())
        # the ack and the sender's own copy, in whichever order they come: closing before the copy
        # would empty the room on the first edge before its fan-out ran, and that fan-out span is
        # what the test follows there
        got = await _events(sender, {"chat:ack", "chat:message"})
        ack = got["chat:ack"]
        assert got["chat:message"]["message"]["id"] == ack["id"]
        message = await _next_event(reader, "chat:message")
        assert message["message"]["id"] == ack["id"]
        return ack
    finally:
        await sender.close()
        await reader.close()


async def _events(ws, kinds: set[str], timeout: float = 10) -> dict[str, dict]:
    """The first event of each kind, however the edge grouped them into frames."""
    deadline, got = time.monotonic() + timeout, {}
    while not kinds <= got.keys():
        frame = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        for line in frame.split("\n"):
            event = orjson.loads(line)
            got.setdefault(event["type"], event)
    return got


async def _next_event(ws, kind: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        for line in frame.split("\n"):
            event = orjson.loads(line)
            if event["type"] == kind:
                return event


def test_chat_message_is_one_trace_across_edges_and_the_persister(gateway, stack, span_collector):
    """A chat message's trace starts at the `chat:send` frame on the sender's edge (a WebSocket
    frame carries no context) and travels in the stored message's headers to the fan-out on every
    edge with members in the room and to the persister in the chat API process."""
    channel = create_channel(gateway, register(gateway, "tro")["auth"], "Traced chat")
    until("chat to learn about the channel", lambda: gateway.get(f"/api/channels/{channel['id']}/messages"),
          lambda r: r.status_code == 200, timeout=20, every=0.3)
    edges = ("chat-edge-1", "chat-edge-2")
    ports = tuple(stack.config.service_ports[name] for name in edges)
    tokens = (register(gateway, "trs")["accessToken"], register(gateway, "trr")["accessToken"])
    ack = asyncio.run(_send_across_edges(ports, tokens, channel["id"]))

    send = span_collector.wait_for(lambda spans: next(
        (s for s in spans if s.service == edges[0] and s.name == "chat:send"
         and s.attributes.get("chat.channel_id") == channel["id"]), None))
    assert send.parent_span_id is None and send.kind == "SERVER"

    def complete(spans):
        trace = [s for s in spans if s.trace_id == send.trace_id]
        fanned_out = {s.service for s in trace if s.name == "fan out chat:message"}
        persisted = any(s.service == "chat" and s.name == "persist chat event" for s in trace)
        return trace if set(edges) <= fanned_out and persisted else None

    trace = span_collector.wait_for(complete, timeout=20)
    for s in trace:
        if s.name in ("fan out chat:message", "persist chat event"):
            assert s.parent_span_id == send.span_id and s.kind == "CONSUMER"
    fan_outs = [s for s in trace if s.name == "fan out chat:message"]
    assert all(s.attributes.get("chat.seq") == ack["seq"] for s in fan_outs)
