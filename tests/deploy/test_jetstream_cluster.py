"""The NATS config of deploy/k8s, run as a real three-server cluster on loopback: JetStream forms
a quorum, and servicekit creates the platform's streams with JETSTREAM_REPLICAS=3 (raising a
stream that was created with one replica, as a cluster upgraded from a single server has),
logged in as a service's own user (the passwords from the environment, as the Secret gives them)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nats
import pytest
import yaml
from contracts.subjects import CHAT_STREAM, EVENTS_STREAM
from devstack.credentials import Credentials, password_variable
from devstack.ports import free_ports
from servicekit.messaging import connect, ensure_streams

REPO = Path(__file__).resolve().parents[2]


def config_map() -> dict[str, str]:
    docs = yaml.safe_load_all((REPO / "deploy" / "k8s" / "base" / "nats.yaml").read_text())
    return next(d for d in docs if d["kind"] == "ConfigMap")["data"]


def cluster_config(index: int, client: int, monitor: int, routes: list[int], store: Path, pid: Path) -> str:
    conf = config_map()["nats.conf"]
    conf = conf.replace("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{client}")
    conf = conf.replace("http: 0.0.0.0:8222", f"http: 127.0.0.1:{monitor}")
    conf = conf.replace("listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{routes[index]}")
    conf = re.sub(r"nats://nats-(\d)\.nats-headless:6222", lambda m: f"nats://127.0.0.1:{routes[int(m[1])]}", conf)
    conf = conf.replace("store_dir: /data", f"store_dir: {store}").replace("/var/run/nats/nats.pid", str(pid))
    conf = conf.replace("max_file_store: 18GB", "max_file_store: 64MB")
    assert "sync_interval: always" in conf and "0.0.0.0" not in conf
    return conf


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def _start_cluster(tmp_path: Path, passwords: dict[str, str], attempt: int):
    """Three servers on nine distinct ports, healthy -> (procs, client ports); None with the servers'
    last words when one exited (a port taken by another process between its choice and the bind)."""
    server = Path(sys.executable).with_name("nats-server")
    # chosen at once: separate free_port() calls can hand out one port twice
    ports = free_ports(9)
    routes, clients, monitors = ports[0:3], ports[3:6], ports[6:9]
    procs, logs = [], []
    for i in range(3):
        conf = tmp_path / f"nats-{attempt}-{i}.conf"
        conf.write_text(cluster_config(i, clients[i], monitors[i], routes, tmp_path / f"js-{attempt}-{i}",
                                       tmp_path / f"nats-{attempt}-{i}.pid"))
        logs.append(tmp_path / f"nats-{attempt}-{i}.log")
        with logs[-1].open("wb") as log:
            procs.append(subprocess.Popen([str(server), "-c", str(conf)],
                                          env={**os.environ, **passwords, "POD_NAME": f"nats-{i}"},
                                          stdout=subprocess.DEVNULL, stderr=log))
    deadline = time.monotonic() + 30
    try:
        while True:  # healthy = JetStream current with a quorum (the probe the StatefulSet uses)
            try:
                if all(httpx.get(f"http://127.0.0.1:{m}/healthz", timeout=1).status_code == 200 for m in monitors):
                    return procs, clients
            except httpx.HTTPError:
                pass
            if any(p.poll() is not None for p in procs):
                _stop(procs)
                return None, " | ".join(log.read_text(errors="replace")[-300:] for log in logs)
            assert time.monotonic() < deadline, "the three servers did not form a JetStream cluster in 30 s"
            time.sleep(0.2)
    except BaseException:
        _stop(procs)
        raise


@pytest.fixture
def cluster(tmp_path):
    creds = Credentials.generate()
    # the StatefulSet's environment: one variable per user, from the Secret nats-users
    passwords = {password_variable(user): password for user, password in creds.nats.items()}
    (tmp_path / "authorization.conf").write_text(config_map()["authorization.conf"])
    for attempt in range(3):
        procs, clients = _start_cluster(tmp_path, passwords, attempt)
        if procs is not None:
            break
    else:
        raise AssertionError(f"a server exited in each of three starts; the last: {clients}")
    try:
        yield creds, [f"127.0.0.1:{c}" for c in clients]
    finally:
        _stop(procs)


async def test_streams_get_three_replicas_on_the_cluster(cluster):
    creds, addresses = cluster
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(f"nats://{addresses[0]}", allow_reconnect=False, connect_timeout=5)
    # channels' user: the one that configures the streams (contracts.access)
    nc = await connect(",".join(creds.nats_url(a, "channels") for a in addresses), "cluster-test")
    try:
        js = nc.jetstream(timeout=10)
        # EVENTS as a single-server deployment left it; CHAT not there yet
        await ensure_streams(js, [EVENTS_STREAM], replicas=1)
        assert (await js.stream_info("EVENTS")).config.num_replicas == 1
        await asyncio.wait_for(ensure_streams(js, [EVENTS_STREAM, CHAT_STREAM], replicas=3), 30)
        for name in ("EVENTS", "CHAT"):
            info = await js.stream_info(name)
            assert info.config.num_replicas == 3, name
        # a service starting with the default never shrinks them
        await ensure_streams(js, [EVENTS_STREAM, CHAT_STREAM], replicas=1)
        assert (await js.stream_info("CHAT")).config.num_replicas == 3
        # a publish is acknowledged by the replicated stream
        ack = await js.publish("channel.created", b"{}", headers={"Nats-Msg-Id": "cluster-test-1"})
        assert ack.stream == "EVENTS" and ack.seq == 1
    finally:
        await nc.close()
