"""A rotated key or an ended stream drops the live publish: control-module drop + on_update 403."""

import asyncio
import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from contracts.envelope import make_event
from contracts.events.channels import StreamKeyRotated
from contracts.events.streams import StreamEndRequested

KEY = "sk_" + secrets.token_urlsafe(24)


class FakeControl:
    """Stands in for nginx-rtmp's control module; records each drop request."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.server: asyncio.Server | None = None
        self.changed = asyncio.Event()

    async def _handle(self, reader, writer):
        request_line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        target = request_line.split(" ")[1]
        parts = urlsplit(target)
        self.requests.append((parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}))
        self.changed.set()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1")
        await writer.drain()
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/control"

    async def wait_for_drops(self, n: int, timeout: float = 10) -> None:
        async def _wait():
            while len(self.requests) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), timeout)


@pytest.fixture
async def control():
    fake = FakeControl()
    url = await fake.start()
    fake.url = url
    yield fake
    fake.server.close()


@pytest.fixture
async def gateway(make_client, control, rtmp_body):
    async with make_client(ingest_control_url=control.url) as client:
        async def post(call, name, **kw):
            path = "publish" if call == "publish" else "update" if call.startswith("update") else call
            return await client.post(f"/hooks/rtmp/{path}", content=rtmp_body(call, name, **kw),
                                     headers={"content-type": "application/x-www-form-urlencoded"})

        client.rtmp = post
        yield client


async def publish_event(nc, subject: str, event) -> None:
    js = nc.jetstream()
    await js.publish(subject, event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})


def relay_name(location: str) -> str:
    return hashlib.md5(location.encode()).hexdigest()


async def test_rotating_the_key_drops_the_publish(gateway, channels, control, nc):
    channels.keys[KEY] = "chan-rot"
    location = (await gateway.rtmp("publish", KEY, clientid="61")).headers["location"]
    assert (await gateway.rtmp("update_publish", KEY, clientid="61")).status_code == 204

    event = make_event("channel.stream_key_rotated",
                       StreamKeyRotated(channel_id="chan-rot", rotated_at=datetime.now(UTC)), source="channels")
    await publish_event(nc, "channel.stream_key_rotated", event)

    await control.wait_for_drops(1)
    path, query = control.requests[0]
    assert path == "/control/drop/publisher"
    assert query == {"app": "live", "name": relay_name(location)}
    assert KEY not in str(control.requests)
    # and nginx-rtmp's next on_update is refused too (the drop could have failed)
    for _ in range(50):
        if (await gateway.rtmp("update_publish", KEY, clientid="61")).status_code == 403:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("on_update still allows the publish after the key was rotated")


async def test_a_publish_with_the_new_key_is_not_dropped(gateway, channels, control, nc):
    channels.keys["sk_new_key_after_rotation"] = "chan-rot"
    await gateway.rtmp("publish", "sk_new_key_after_rotation", clientid="62")
    # the rotation happened before this publish started: it concerns older publishes only
    event = make_event("channel.stream_key_rotated", StreamKeyRotated(
        channel_id="chan-rot", rotated_at=datetime.now(UTC) - timedelta(minutes=1)), source="channels")
    await publish_event(nc, "channel.stream_key_rotated", event)
    await asyncio.sleep(1.5)
    assert control.requests == []
    assert (await gateway.rtmp("update_publish", "sk_new_key_after_rotation", clientid="62")).status_code == 204


async def test_ending_the_stream_drops_the_publish(gateway, channels, control, nc):
    channels.keys[KEY] = "chan-end"
    location = (await gateway.rtmp("publish", KEY, clientid="63")).headers["location"]
    event = make_event("stream.end_requested", StreamEndRequested(stream_id="stream-1", channel_id="chan-end"),
                       source="streams")
    await publish_event(nc, "stream.end_requested", event)
    await control.wait_for_drops(1)
    assert control.requests[0][1]["name"] == relay_name(location)
    # the same event again (a republish) drops nothing twice
    await publish_event(nc, "stream.end_requested", event.model_copy(update={}))
    await asyncio.sleep(1.0)
    assert len(control.requests) == 1


async def test_drop_without_a_control_module_still_refuses_on_update(make_client, channels, nc, rtmp_body):
    async with make_client(ingest_control_url="http://127.0.0.1:9/control") as client:
        async def post(call, name, **kw):
            path = "publish" if call == "publish" else "update"
            return await client.post(f"/hooks/rtmp/{path}", content=rtmp_body(call, name, **kw),
                                     headers={"content-type": "application/x-www-form-urlencoded"})

        channels.keys[KEY] = "chan-nodrop"
        assert re.search(r"/src/[0-9a-f]{32}_src$", (await post("publish", KEY, clientid="64")).headers["location"])
        event = make_event("stream.end_requested",
                           StreamEndRequested(stream_id="stream-2", channel_id="chan-nodrop"), source="streams")
        await publish_event(nc, "stream.end_requested", event)
        for _ in range(50):
            if (await post("update_publish", KEY, clientid="64")).status_code == 403:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("on_update still allows an ended stream")


async def test_control_client_reports_nginx_failures():
    from media_gateway.ingest.control import NginxControl

    assert await NginxControl(None, "live").drop_publisher("x", "s") is None
    assert await NginxControl("http://127.0.0.1:9/control", "live", timeout=0.5).drop_publisher("x", "s") is None

    refusing = httpx.MockTransport(lambda request: httpx.Response(500))
    assert await NginxControl("http://nginx/control", "live", transport=refusing).drop_publisher("x", "s") is None
    counting = httpx.MockTransport(lambda request: httpx.Response(200, text="2\n"))
    assert await NginxControl("http://nginx/control", "live", transport=counting).drop_publisher("x", "s") == 2


# ---- several ingest nodes: a drop is done by the node holding the session ------------------------

@pytest.fixture
async def two_nodes(make_client, rtmp_body):
    """Two ingest nodes on one database and NATS: each media gateway beside its own nginx-rtmp
    (here each its own fake control module)."""
    controls = {"node-a": FakeControl(), "node-b": FakeControl()}
    clients = {}
    try:
        for fake in controls.values():
            fake.url = await fake.start()
        async with make_client(ingest_node="node-a", ingest_control_url=controls["node-a"].url) as a, \
                make_client(ingest_node="node-b", ingest_control_url=controls["node-b"].url) as b:
            for node, client in (("node-a", a), ("node-b", b)):
                async def post(call, name, _client=client, **kw):
                    path = "publish" if call == "publish" else "update" if call.startswith("update") else call
                    return await _client.post(f"/hooks/rtmp/{path}", content=rtmp_body(call, name, **kw),
                                              headers={"content-type": "application/x-www-form-urlencoded"})
                client.rtmp = post
                client.control = controls[node]
                clients[node] = client
            yield clients
    finally:
        for fake in controls.values():
            if fake.server is not None:
                fake.server.close()


async def test_a_reconnect_on_another_node_drops_the_old_publisher_on_its_node(two_nodes, channels, events):
    """The encoder reconnects through the balancer and lands on node B while its old connection is
    still open on node A: the new session supersedes the old one, and node A drops the old publisher."""
    a, b = two_nodes["node-a"], two_nodes["node-b"]
    channels.keys[KEY] = "chan-nodes"
    first = await a.rtmp("publish", KEY, clientid="71")
    connected = await events.wait_for("media.ingest.connected", lambda d: d["channelId"] == "chan-nodes")
    assert connected["data"]["hlsUrl"].startswith("/hls/node-a/")
    second = await b.rtmp("publish", KEY, clientid="71")
    assert second.status_code == 302
    await a.control.wait_for_drops(1)
    assert a.control.requests[0][1]["name"] == relay_name(first.headers["location"])
    assert b.control.requests == []
    again = await events.wait_for("media.ingest.connected",
                                  lambda d: d["channelId"] == "chan-nodes" and d["hlsUrl"].startswith("/hls/node-b/"))
    assert again["data"]["ingestSessionId"] != connected["data"]["ingestSessionId"]


async def test_a_revocation_drops_the_publisher_on_the_node_holding_it(two_nodes, channels, nc):
    """Whichever replica consumes the rotation, the drop reaches node B's nginx-rtmp only."""
    a, b = two_nodes["node-a"], two_nodes["node-b"]
    channels.keys[KEY] = "chan-nodes-rot"
    location = (await b.rtmp("publish", KEY, clientid="72")).headers["location"]
    event = make_event("channel.stream_key_rotated",
                       StreamKeyRotated(channel_id="chan-nodes-rot", rotated_at=datetime.now(UTC)), source="channels")
    await publish_event(nc, "channel.stream_key_rotated", event)
    await b.control.wait_for_drops(1)
    assert b.control.requests[0][1]["name"] == relay_name(location)
    assert a.control.requests == []


async def test_node_drops_route_by_node_and_a_silent_node_is_no_error(two_nodes):
    a, b = two_nodes["node-a"], two_nodes["node-b"]
    session_id = secrets.token_hex(16)
    assert await a.app.state.drops.drop("node-b", f"{session_id}_src", session_id) == 1
    assert b.control.requests == [("/control/drop/publisher", {"app": "live", "name": f"{session_id}_src"})]
    assert a.control.requests == []
    # a node nobody answers for (dead, or cut off) drops nothing and raises nothing
    assert await a.app.state.drops.drop("node-gone", f"{session_id}_src", session_id) is None


async def test_callbacks_find_only_the_sessions_of_their_own_node(two_nodes, channels):
    """nginx-rtmp's clientid is a counter of each node's own: node B's callback for a client id and
    key that node A also has must not reach node A's session."""
    a, b = two_nodes["node-a"], two_nodes["node-b"]
    channels.keys[KEY] = "chan-nodes-cb"
    await a.rtmp("publish", KEY, clientid="73")
    assert (await a.rtmp("update_publish", KEY, clientid="73")).status_code == 204
    assert (await b.rtmp("update_publish", KEY, clientid="73")).status_code == 404
