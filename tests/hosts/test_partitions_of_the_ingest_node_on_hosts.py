"""Fault (issue 13): link down of the ingest node that holds a live stream.

The encoder (ffmpeg) publishes through an L4 balancer over the ingest pods' RTMP ports, standing in
for the LoadBalancer Service `ingest-rtmp` (deploy/ingest/rtmp-balancer.conf.template, on the host).
The stream plays through the gateway from the node holding it. That node's link goes down: its
processes run on, reaching nobody, and the encoder's connection stalls. The encoder reconnects
through the balancer, as OBS does when its output stalls (EMULATED: the test stops the stalled
ffmpeg and starts a new one at once, instead of waiting for a stall detector). The balancer cannot
reach the cut-off node and connects to the other one; the stream keeps its id and plays again
through the gateway, from the other node.

Runs last (file order: after test_partitions_and_kills_on_hosts.py, whose chat load must not
share the machine with a transcoded stream); the node's link is up again at the end."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import Nginx
from devstack.stack import REPO_ROOT, render_template

pytestmark = [pytest.mark.timeout(300), pytest.mark.skipif(
    shutil.which("ffmpeg") is None or not Path("/usr/lib/nginx/modules/ngx_stream_module.so").exists(),
    reason="needs ffmpeg and nginx's stream module (libnginx-mod-stream)")]

WAIT = 60.0


def _poll(what: str, check, timeout: float = WAIT, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _encoder(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc=size=426x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "120", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
         "-c:a", "aac", "-f", "flv", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _plays(http: httpx.Client, hls_url: str) -> bool:
    master = http.get(hls_url)
    variants = [line for line in master.text.splitlines() if line and not line.startswith("#")]
    if master.status_code != 200 or not variants:
        return False
    playlist = http.get(variants[0])
    segments = [line for line in playlist.text.splitlines() if line.startswith("seg-")]
    if playlist.status_code != 200 or not segments:
        return False
    return http.get(f"{variants[0].rsplit('/', 1)[0]}/{segments[-1]}").status_code == 200


def _node_of(hls_url: str) -> str:
    return httpx.URL(hls_url).path.split("/")[2]


@pytest.fixture
def rtmp_balancer(platform, tmp_path):
    """nginx `stream` on the host, over every ingest pod's RTMP port."""
    ingest = [p for p in platform.pods if p.app == "ingest"]
    assert len(ingest) >= 2, "the rehearsal runs two ingest nodes"
    port = free_port()
    (tmp_path / "logs").mkdir()
    servers = " ".join(f"server {p.ip}:{p.declared_ports()['rtmp']} max_fails=1 fail_timeout=30s;" for p in ingest)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_template((REPO_ROOT / "deploy" / "ingest" / "rtmp-balancer.conf.template").read_text(),
                                    {"PREFIX": str(tmp_path), "RTMP_LISTEN": f"127.0.0.1:{port}",
                                     "RTMP_SERVERS": servers}))
    sup = Supervisor(tmp_path / "logs")
    try:
        Nginx(conf, tmp_path, port).start(sup, "rtmp-balancer")
        yield f"rtmp://127.0.0.1:{port}/live"
    finally:
        sup.stop_all()


def test_a_stream_survives_the_partition_of_its_ingest_node(platform, rtmp_balancer):
    rehearsal = platform
    gateway = next(p for p in rehearsal.pods if p.app == "gateway")
    http = httpx.Client(base_url=f"http://{gateway.ip}:{gateway.declared_ports()['http']}", timeout=30)
    name = f"p{secrets.token_hex(4)}"
    r = http.post("/api/auth/register", json={"email": f"{name}@example.com", "username": name,
                                              "password": "s3cret-passw0rd"})
    assert r.status_code == 201, r.text
    auth = {"Authorization": f"Bearer {r.json()['accessToken']}"}
    channel = http.post("/api/channels", json={"name": "Partition"}, headers=auth).json()
    key = http.get(f"/api/channels/{channel['id']}/stream-key", headers=auth).json()["streamKey"]
    stream_id = _poll("Go live", lambda: (r := http.post(f"/api/streams/{channel['id']}/start",
                                                          json={"title": "Partition"}, headers=auth))
                      .status_code == 200 and r).json()["id"]

    def stream() -> dict:
        return http.get(f"/api/streams/{stream_id}").json()

    first = _encoder(f"{rtmp_balancer}/{key}")
    second = None
    holder = None
    try:
        live = _poll("the stream LIVE", lambda: (s := stream())["status"] == "LIVE" and s["hlsUrl"] and s)
        holder = rehearsal.pod(_node_of(live["hlsUrl"]))
        _poll(f"playing through the gateway from {holder.name}", lambda: _plays(http, live["hlsUrl"]))

        rehearsal.partition(holder)
        cut_at = time.monotonic()
        time.sleep(1)  # the encoder's connection stalls
        _stop(first)
        second = _encoder(f"{rtmp_balancer}/{key}")
        moved = _poll("the stream moving to another node",
                      lambda: (s := stream())["hlsUrl"] and _node_of(s["hlsUrl"]) != holder.name and s)
        assert moved["id"] == stream_id and moved["status"] == "LIVE"
        assert moved["startTime"] == live["startTime"]
        _poll("playing again through the gateway", lambda: _plays(http, moved["hlsUrl"]))
        print(f"partition of {holder.name}: playing from {_node_of(moved['hlsUrl'])} after "
              f"{time.monotonic() - cut_at:.1f} s, stream {stream_id} kept")
        assert [s["id"] for s in http.get(f"/api/channels/{channel['id']}/streams",
                                          params={"status": "LIVE"}).json()["items"]] == [stream_id]
    finally:
        _stop(first)
        _stop(second)
        if holder is not None:
            rehearsal.heal(holder)
        http.close()
