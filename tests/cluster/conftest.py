"""The multi-node rehearsal (`make cluster-test`): three clustered NATS nodes, two copies of every
service, three chat edges and the gateway balancing over them, all on loopback
(`devstack.cluster.ClusterStack`). One stack for the whole suite; the test that kills parts of
it is in the last file (test_node_and_edge_loss.py) and says what it leaves behind."""

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
from devstack.chatclient import ChatClient
from devstack.cluster import ClusterStack
from devstack.pytest_plugin import fail_on_nats_refusals
from devstack.stack import StackConfig


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="package")
def cluster():
    """Package-scoped: in `make test` it stops before tests/e2e starts its own stack."""
    data_dir = Path(tempfile.mkdtemp(prefix="sp-cluster-"))
    if os.geteuid() == 0:
        os.chmod(data_dir, 0o755)  # the dropped-privilege PostgreSQL user must traverse it
    config = StackConfig.ephemeral(data_dir)
    # a load rehearsal, not a rate-limit test: a few users send several messages a second each
    config.extra_env["RATE_LIMIT_MESSAGES"] = "10000"
    stack = ClusterStack(config, nats_nodes=3, copies=2, edges=3, log=lambda _m: None)
    with stack:
        yield stack
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def gateway(cluster) -> httpx.Client:
    with httpx.Client(base_url=f"http://127.0.0.1:{cluster.config.gateway_port}", timeout=10) as client:
        yield client


@pytest.fixture
def upstreams_used(cluster):
    """The upstream addresses the gateway's access log names, per request path prefix."""

    def read() -> list[tuple[str, str]]:
        log = cluster.config.data_dir / "nginx" / "logs" / "access.log"
        rows = []
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            rows.append((entry.get("path") or entry.get("uri") or "", entry.get("upstream") or ""))
        return rows

    return read


@pytest.fixture
def register(gateway):
    """register(prefix) -> a new user's access token (through the gateway, so any auth copy)."""

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        r = gateway.post("/api/auth/register", json={"email": f"{name}@example.com",
                                                     "password": "s3cret-passw0rd", "username": name})
        assert r.status_code == 201, r.text
        return r.json()["accessToken"]

    return make


@pytest.fixture
def chat_room(gateway, register):
    """chat_room(prefix) -> (channel id, owner token) of a channel the chat service knows (it
    learns channels from channel.created)."""

    def make(prefix: str) -> tuple[str, str]:
        token = register(prefix)
        channel = gateway.post("/api/channels", json={"name": f"Room {prefix}"},
                               headers={"Authorization": f"Bearer {token}"}).json()
        deadline = time.monotonic() + 20
        while gateway.get(f"/api/channels/{channel['id']}/messages").status_code != 200:
            assert time.monotonic() < deadline, "chat never learned about the channel"
            time.sleep(0.3)
        return channel["id"], token

    return make


@pytest.fixture
def chat_client():
    """chat_client(port, token) -> a ChatClient on 127.0.0.1:port (a chat edge or the gateway)."""
    return lambda port, token: ChatClient(f"ws://127.0.0.1:{port}/ws", token)


_nats_refused_nothing = fail_on_nats_refusals("cluster")
