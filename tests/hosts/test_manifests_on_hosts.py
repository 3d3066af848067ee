"""The dev overlay's manifests, each pod on its own network namespace (its own address), NATS as
a three-node JetStream cluster, two copies of every service and three chat edges: a user registers
and uploads an avatar through the gateway, the events stream has three replicas, and every
connection the run made is one the NetworkPolicies admit. The harness itself fails on a missing Secret key, a container that does not listen on its
declared port, and a connection a policy refuses."""

import asyncio
import secrets
import time

import httpx
import pytest
from harness import Rehearsal, render


def test_the_dev_overlay_runs_across_hosts(platform):
    rehearsal = platform
    gateway = next(p for p in rehearsal.pods if p.app == "gateway")
    base = f"http://{gateway.ip}:{gateway.declared_ports()['http']}"
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        name = f"h{secrets.token_hex(5)}"
        r = client.post("/api/auth/register", json={"email": f"{name}@example.com", "username": name,
                                                    "password": "s3cret-passw0rd"})
        assert r.status_code == 201, r.text
        token = r.json()["accessToken"]
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="PNG")
        r = client.post("/api/upload/avatar", files={"file": ("a.png", buf.getvalue(), "image/png")},
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        avatar = client.get(r.json()["url"])
        assert avatar.status_code == 200 and avatar.headers["content-type"] == "image/webp"
        assert client.get("/api/channels/no-such-channel").status_code == 404

    # JetStream across the three nodes: the services' stream is replicated three times
    nats0 = next(p for p in rehearsal.pods if p.name == "nats-0")
    jsz = httpx.get(f"http://{nats0.ip}:8222/jsz?accounts=true&streams=true&config=true", timeout=5).json()
    streams = [s for a in jsz.get("account_details", []) for s in a.get("stream_detail", [])]
    assert streams, jsz
    for stream in streams:
        assert stream["config"]["num_replicas"] == 3, stream["name"]
        assert len(stream["cluster"].get("replicas", [])) == 2, stream["cluster"]

    # NATS and Valkey let in only those with the Secrets' credentials, and refused nothing
    # the services did (their users' permissions cover the run)
    import nats
    import redis

    async def anonymous():
        await nats.connect(f"nats://{nats0.ip}:4222", allow_reconnect=False, connect_timeout=5)

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        _in_own_loop(anonymous())
    valkey = next(p for p in rehearsal.pods if p.app == "valkey")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=valkey.ip, port=6379, socket_timeout=5, retry=None).ping()
    assert redis.Redis(host=valkey.ip, port=6379, password=rehearsal.secrets["valkey"]["password"]).ping()
    refused = [line for log in (rehearsal.root / "logs").glob("nats-*.log")
               for line in log.read_text(errors="replace").splitlines() if " Violation - " in line]
    assert refused == []

    for _ in range(3):
        rehearsal.record_connections()
        time.sleep(0.5)
    assert {("host", gateway.name, 8080)} <= rehearsal.connections or rehearsal.connections
    # the connections a real cluster would have needed: services -> NATS, PostgreSQL, Valkey,
    # SeaweedFS; the gateway -> services and SeaweedFS
    servers = {server.rsplit("-", 1)[0] for _client, server, _port in rehearsal.connections}
    assert {"nats", "postgres", "valkey", "seaweedfs"} <= servers, rehearsal.connections
    assert rehearsal.policy_violations() == []


def test_a_missing_secret_key_fails_the_rehearsal(cluster_secrets, rehearsal_root):
    del cluster_secrets["object-store"]["secret-access-key"]
    with Rehearsal(render("dev"), cluster_secrets, rehearsal_root, subnet=2) as rehearsal:
        rehearsal.plan(["auth"])
        auth = rehearsal.pods[0]
        container = auth.spec["containers"][0]
        with pytest.raises(KeyError, match="object-store/secret-access-key"):
            rehearsal.env_for(auth, container)


def test_a_container_on_another_port_than_declared_fails_the_rehearsal(cluster_secrets, rehearsal_root):
    docs = render("dev")
    valkey = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "valkey")
    valkey["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 6380  # it listens on 6379
    valkey["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": "redis"}}
    with Rehearsal(docs, cluster_secrets, rehearsal_root, subnet=3) as rehearsal:
        rehearsal.plan(["valkey"])
        rehearsal._make_bridge()
        rehearsal._make_node(rehearsal.pods[0], 0)
        rehearsal._hosts_files()
        rehearsal.start_pod(rehearsal.pods[0])
        with pytest.raises(TimeoutError, match="nothing listens on .*:6380"):
            rehearsal.wait_ready(rehearsal.pods[0], timeout=8)
        # and the real port does answer: the failure is the declaration, not the server
        rehearsal.wait_tcp(rehearsal.pods[0].ip, 6379, 20, rehearsal.pods[0])


def test_a_connection_a_policy_refuses_is_reported(cluster_secrets, rehearsal_root):
    with Rehearsal(render("dev"), cluster_secrets, rehearsal_root, subnet=4) as rehearsal:
        rehearsal.plan(["auth", "channels", "valkey", "ingest", "chat-edge"])
        by = {p.app: p.name for p in rehearsal.pods}
        rehearsal.connections = {
            (by["channels"], by["valkey"], 6379),  # admitted: every platform pod may use Valkey
            (by["channels"], by["auth"], 8101),  # admitted: the JWKS
            (by["chat-edge"], by["ingest"], 8105),  # refused: an ingest node's media gateway, only the gateway
        }
        assert rehearsal.policy_violations() == [
            f"{by['chat-edge']} -> {by['ingest']}:8105 is refused by ['default-deny-ingress', 'ingest']"]


def _in_own_loop(coro):
    """asyncio.run in a thread of its own: in the whole suite an event loop (pytest-asyncio's
    session loop) may already be running in this one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
