"""Ingest on two nodes behind an L4 balancer (issue 13 item 3), through the gateway.

The stack runs two ingest nodes (each an nginx-rtmp and the media gateway beside it) and an nginx
`stream` balancer on the RTMP port, as the LoadBalancer Service does in Kubernetes. The encoder
publishes through the balancer; the stream plays through the gateway from the node that holds it
(`/hls/<node>/...`). That node is killed (kill -9 of its nginx-rtmp and media gateway); the encoder
reconnects through the balancer, as OBS does, lands on the other node, the stream keeps its id and
plays again. A key rotation then drops the publisher on whichever node holds it.
"""

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from devstack.pytest_plugin import fail_on_nats_refusals
from devstack.stack import Stack, StackConfig
from servicekit.testing import poll

from .helpers import Creator as BaseCreator
from .helpers import encoder, gateway_client, rtmp_url, stop

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    shutil.which("ffmpeg") is None or not Path("/usr/lib/nginx/modules/ngx_stream_module.so").exists(),
    reason="needs ffmpeg and nginx's stream module (libnginx-mod-stream)")]

WAIT = 30.0


@pytest.fixture(scope="module")
def nodes_stack():
    data_dir = Path(tempfile.mkdtemp(prefix="sp-nodes-"))
    if os.geteuid() == 0:
        os.chmod(data_dir, 0o755)  # the dropped-privilege PostgreSQL user must traverse it
    config = StackConfig.ephemeral(data_dir)
    config.ingest_nodes = 2
    # the encoder is back within a few seconds (OBS retries every 2-10 s); a short window would
    # end the stream while the test kills a node
    config.extra_env["RECONNECT_WINDOW_SECONDS"] = "20"
    with Stack(config, log=lambda _m: None) as running:
        yield running
    shutil.rmtree(data_dir, ignore_errors=True)


_nats_refused_nothing = fail_on_nats_refusals("nodes_stack")


@pytest.fixture
def gateway(nodes_stack) -> httpx.Client:
    with gateway_client(nodes_stack) as client:
        yield client


class Creator(BaseCreator):
    def __init__(self, gateway: httpx.Client, stack: Stack):
        super().__init__(gateway, "nd")
        self.stack = stack
        self.key = self.keys()["streamKey"]

    def encoder(self, seconds: int = 90) -> subprocess.Popen:
        """ffmpeg publishing through the balancer (the stack's RTMP port)."""
        return encoder(rtmp_url(self.stack, self.key), seconds=seconds)


def node_of(hls_url: str) -> str:
    """/hls/<node>/<session>/index.m3u8 -> <node> (the URL is the API's, never built here)."""
    path = httpx.URL(hls_url).path
    assert path.startswith("/hls/"), hls_url
    return path.split("/")[2]


def plays(gateway: httpx.Client, hls_url: str) -> bool:
    """The master playlist and a segment of its first rendition, through the gateway's cache."""
    master = gateway.get(hls_url)
    if master.status_code != 200:
        return False
    variants = [line for line in master.text.splitlines() if line and not line.startswith("#")]
    if not variants:
        return False
    playlist = gateway.get(variants[0])
    segments = [line for line in playlist.text.splitlines() if line.startswith("seg-")]
    if playlist.status_code != 200 or not segments:
        return False
    segment = gateway.get(f"{variants[0].rsplit('/', 1)[0]}/{segments[-1]}")
    return segment.status_code == 200 and segment.headers["content-type"] == "video/mp4"


def session_of(hls_url: str) -> str:
    return httpx.URL(hls_url).path.split("/")[3]


def dropped_by(stack: Stack, node_name: str, session_id: str) -> bool:
    """Whether that node's media gateway logged nginx-rtmp's drop of the session's publisher."""
    node = next(n for n in stack.ingest_nodes if n.name == node_name)
    log = stack.config.data_dir / "logs" / f"{node.media_gateway_process}.log"
    for line in log.read_text(errors="replace").splitlines():
        if '"ingest dropped"' in line and session_id in line:
            return json.loads(line).get("dropped") == 1
    return False


def test_the_rotation_drops_the_publisher_on_the_node_holding_it(gateway, nodes_stack):
    """With both nodes up: the balancer spreads publishes over them, and a rotation drops each one
    through its own node's nginx-rtmp, whichever media gateway consumed the rotation (not by
    on_update's refusal up to 5 s later)."""
    stack = nodes_stack
    seen = set()
    for _ in range(6):
        creator = Creator(gateway, stack)
        stream_id = creator.go_live()
        encoder = creator.encoder()
        try:
            live = poll("LIVE", lambda c=creator, i=stream_id: (s := c.stream(i))["status"] == "LIVE"
                        and s["hlsUrl"] and s, WAIT)
            holder, session_id = node_of(live["hlsUrl"]), session_of(live["hlsUrl"])
            seen.add(holder)
            r = gateway.post(f"/api/channels/{creator.channel['id']}/stream-key/rotate", headers=creator.auth)
            assert r.status_code == 200, r.text
            encoder.wait(15)
            poll(f"{holder}'s media gateway dropping the publisher",
                 lambda h=holder, s=session_id: dropped_by(stack, h, s), 10)
        finally:
            stop(encoder)
        if seen == {"ingest-0", "ingest-1"}:
            break
    assert seen == {"ingest-0", "ingest-1"}


def test_an_unknown_node_is_a_404_problem(gateway):
    r = gateway.get(f"/hls/ingest-9/{uuid.uuid4().hex}/index.m3u8")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404


def test_a_stream_survives_the_loss_of_its_ingest_node(gateway, nodes_stack):
    stack = nodes_stack
    assert [n.name for n in stack.ingest_nodes] == ["ingest-0", "ingest-1"]
    creator = Creator(gateway, stack)
    stream_id = creator.go_live()
    first = creator.encoder()
    second = None
    try:
        live = poll("the stream LIVE with an hlsUrl", lambda: (s := creator.stream(stream_id))["status"] == "LIVE"
                    and s["hlsUrl"] and s, WAIT)
        holder = node_of(live["hlsUrl"])
        assert holder in ("ingest-0", "ingest-1")
        poll(f"the stream playing through the gateway from {holder}", lambda: plays(gateway, live["hlsUrl"]), WAIT)

        # the node holding the stream dies: its nginx-rtmp and its media gateway, kill -9
        node = next(n for n in stack.ingest_nodes if n.name == holder)
        for process in (node.ingest_process, node.media_gateway_process):
            stack.sup.kill(stack.ingest_processes.pop(process))
        # the encoder loses its connection (the balancer closes it with the node's)
        first.wait(15)
        # and reconnects through the balancer, which skips the dead node
        second = creator.encoder()
        moved = poll("the stream moving to the other node", lambda: (s := creator.stream(stream_id))["hlsUrl"]
                     and node_of(s["hlsUrl"]) != holder and s, WAIT)
        assert moved["id"] == stream_id and moved["status"] == "LIVE"
        assert moved["startTime"] == live["startTime"]
        poll("the stream playing again through the gateway", lambda: plays(gateway, moved["hlsUrl"]), WAIT)
        # the dead node's URL is an error the player can act on, never a hang or a stale answer
        old = gateway.get(live["hlsUrl"])
        assert old.status_code in (404, 502, 503) and old.headers["content-type"] == "application/problem+json"

        # a key rotation drops the publisher on whichever node holds it
        r = gateway.post(f"/api/channels/{creator.channel['id']}/stream-key/rotate", headers=creator.auth)
        assert r.status_code == 200, r.text
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            pytest.fail("the publish with the rotated key is still running on the surviving node")
    finally:
        stop(first)
        if second is not None:
            stop(second)
