"""Go live on the rehearsal cluster: streams replicated on three NATS nodes, the gateway spreading
requests over both copies of each service, and ffmpeg -> LIVE through it all."""

import asyncio
import shutil
import subprocess
import time

import nats
import pytest


async def _stream_replicas(urls: list[str], name: str):
    nc = await nats.connect(urls)
    try:
        return await nc.jetstream().stream_info(name)
    finally:
        await nc.close()


@pytest.mark.parametrize("stream", ["EVENTS", "CHAT"])
def test_streams_are_replicated_on_every_node(cluster, stream):
    info = _poll(lambda: (i := asyncio.run(_stream_replicas(cluster.nats.node_urls(), stream))).cluster
                 and all(r.current for r in i.cluster.replicas or []) and i, 15)
    assert info, f"{stream}: replicas not current"
    assert info.config.num_replicas == 3
    peers = [r.name for r in info.cluster.replicas or []]
    assert info.cluster.leader and len(peers) == 2 and info.cluster.leader not in peers


def _poll(fn, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_go_live_through_the_cluster(gateway, cluster, upstreams_used, register):
    auth = {"Authorization": f"Bearer {register('cl')}"}
    channel = gateway.post("/api/channels", json={"name": "Cluster live"}, headers=auth).json()
    key = gateway.get(f"/api/channels/{channel['id']}/stream-key", headers=auth).json()["streamKey"]
    def start():
        r = gateway.post(f"/api/streams/{channel['id']}/start", json={"title": "Rehearsal"}, headers=auth)
        return r.status_code == 200 and r.json()

    started = _poll(start, 20)
    assert started, "streams never learned about the channel"

    encoder = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15",
         "-t", "25", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-f", "flv",
         f"rtmp://127.0.0.1:{cluster.config.rtmp_port}/live/{key}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        live = _poll(lambda: gateway.get(f"/api/streams/{started['id']}").json().get("status") == "LIVE", 40)
        assert live, gateway.get(f"/api/streams/{started['id']}").json()
        def live_page():
            page = gateway.get(f"/api/channels/{channel['slug']}").json()
            return page.get("isLive") and page

        page = _poll(live_page, 20)
        assert page and page["liveStreamId"] == started["id"]
    finally:
        encoder.kill()
        encoder.wait(10)

    # reads spread over both copies: each copy answered some of the API requests above
    for _ in range(10):
        gateway.get(f"/api/channels/{channel['slug']}")
        gateway.get(f"/api/streams/{started['id']}")
    used = upstreams_used()
    for service, prefix in (("channels", "/api/channels/"), ("streams", "/api/streams/")):
        answered = {up for path, up in used if path.startswith(prefix)}
        ports = {f"127.0.0.1:{p}" for p in cluster.copy_ports[service]}
        assert ports <= answered, f"{service}: copies {ports}, the gateway used {answered}"
