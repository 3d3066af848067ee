"""Chat fan-out benchmark: ONE WebSocket edge process (`python -m chat_service edge`) under V
viewers in one room, S senders, R msg/s, T seconds per load point.

    .venv/bin/python bench/chat.py [--points 100x100,250x200,500x500,1000x1000] [--seconds 8]
                                   [--senders 10] [--idle-connections 5000]

A load point `VxR` is V viewers and R msg/s (offered deliveries/s = V*R). Starts what the edge
needs (devstack's NATS with JetStream, PostgreSQL, Valkey; the chat API process for its replicas,
history and persister; one edge), all on free 127.0.0.1 ports, and stops everything at the end.
Viewers are anonymous readers (API.md: `auth` is optional); senders publish what the chat core
publishes once it accepted a message (the `chat.message` envelope on JetStream), so the measured
path is JetStream -> edge -> sockets, not the send pipeline. The load generator runs in its own
processes (bench/_chatload.py). Writes bench/results/chat.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _chatload import idle_memory, run_point  # the helpers sit next to this script
from _common import EdgeProbe, machine_info, process_tree, progress, write_results

TARGETS = {"deliveriesPerSecond": 1_000_000, "p99MsAtTarget": 100, "p99MsBelow50k": 25,
           "bytesPerIdleConnection": 20 * 1024}


class ChatStack:
    """NATS, PostgreSQL, Valkey, the chat API and one edge, as `make run` starts them."""

    def __init__(self, data_dir: Path, *, persister: bool = False, profile: Path | None = None):
        from devstack.ports import free_port
        from devstack.processes import Supervisor

        self.data_dir = data_dir
        self.persister = persister
        self.profile = profile
        self.sup = Supervisor(data_dir / "logs")
        self.ports = {name: free_port() for name in ("nats", "nats_monitor", "postgres", "redis", "api", "edge")}

    def start(self) -> ChatStack:
        from devstack.servers import NatsServer, Postgres, Valkey, provision_streams, wait_http_ok

        p, d = self.ports, self.data_dir
        self.nats = NatsServer(p["nats"], p["nats_monitor"], d / "nats").start(self.sup)
        self.postgres = Postgres(p["postgres"], d / "postgres", durable=False).start(self.sup)
        self.valkey = Valkey(p["redis"], d / "valkey", durable=False).start(self.sup)
        self.postgres.create_database("chat")
        # no channels service here: its part, creating the streams, done as the admin
        provision_streams(self.nats.url)
        env = {
            # the chat API and the persister as NATS user chat, the edge as chat-edge (contracts.access)
            "HOST": "127.0.0.1", "NATS_URL": self.nats.url_for("chat"), "REDIS_URL": self.valkey.url,
            "DATABASE_URL": self.postgres.url("chat"), "PYTHONUNBUFFERED": "1",
            # nobody signs in: the key set is never fetched (viewers are anonymous readers)
            "JWKS_URL": f"http://127.0.0.1:{p['api']}/.well-known/jwks.json",
        }
        self.env = env
        migrated = subprocess.run([sys.executable, "-m", "chat_service", "migrate"], env={**os.environ, **env},
                                  check=False, capture_output=True, text=True, timeout=120)
        if migrated.returncode != 0:
            raise RuntimeError(f"chat migrations failed:\n{migrated.stdout}\n{migrated.stderr}")
        self.api = self.sup.start("chat", [sys.executable, "-m", "chat_service", "serve"],
                                  env={**env, "SERVICE_NAME": "chat", "PORT": str(p["api"]),
                                       "PERSISTER_ENABLED": "true" if self.persister else "false"})
        wait_http_ok(f"http://127.0.0.1:{p['api']}/readyz", timeout=60)
        # cProfile writes its file when the edge exits on SIGTERM (a graceful stop)
        profiler = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        self.edge = self.sup.start("chat-edge-1", [sys.executable, *profiler, "-m", "chat_service", "edge"],
                                   env={**env, "SERVICE_NAME": "chat-edge-1", "EDGE_ID": "edge-1",
                                        "NATS_URL": self.nats.url_for("chat-edge"),
                                        "PORT": str(p["edge"])})
        wait_http_ok(f"http://127.0.0.1:{p['edge']}/readyz", timeout=60)
        return self

    def start_persister(self, timeout: float = 120.0) -> None:
        """A persister process (when the API runs none), returned once it caught up: a join then
        reads history from PostgreSQL alone. Without one every join reads the room's tail from
        JetStream with its own short-lived consumer, and thousands of joins at once hit
        JetStream's consumer limit."""
        if self.persister:
            return
        self.persister_child = self.sup.start("chat-persister", [sys.executable, "-m", "chat_service", "persist"],
                                              env=self.env)
        asyncio.run(_persister_caught_up(self.nats.url, timeout))

    def stop_persister(self) -> None:
        if getattr(self, "persister_child", None) is not None:
            self.sup.stop(self.persister_child)
            self.persister_child = None

    def cpu_groups(self) -> dict[str, list[int]]:
        return {"edge": [self.edge.popen.pid], "nats": [self.nats.child.popen.pid],
                "chatApi": [self.api.popen.pid], "postgres": process_tree(self.postgres.child.popen.pid),
                "valkey": [self.valkey.child.popen.pid]}

    def stop(self) -> None:
        self.sup.stop_all()


@contextlib.contextmanager
def chat_stack(**options) -> Iterator[ChatStack]:
    data_dir = Path(tempfile.mkdtemp(prefix="sp-bench-chat-"))
    if os.geteuid() == 0:
        os.chmod(data_dir, 0o755)  # the dropped-privilege PostgreSQL user must traverse it
    stack = ChatStack(data_dir, **options)
    started = time.monotonic()
    try:
        stack.start()
        progress(f"chat stack up in {time.monotonic() - started:.1f}s (edge pid {stack.edge.popen.pid})")
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def create_channel(nats_url: str) -> str:
    """A channel as the channels service announces it; returns once chat's replicas have it."""
    import nats
    from contracts.catalog import subject_for
    from contracts.envelope import make_event
    from contracts.events.channels import Channel

    channel_id = str(uuid.uuid4())
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        env = make_event("channel.created", Channel(
            id=channel_id, slug=f"bench-{channel_id[:8]}", name="Bench", description=None, category=None, tags=[],
            avatar=None, banner=None, is_public=True, owner_id=str(uuid.uuid4())), source="channels")
        await js.publish(subject_for("channel.created"), env.to_json_bytes(), headers={"Nats-Msg-Id": env.id})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                info = await js.consumer_info("EVENTS", "chat-replicas")
                if info.num_pending + info.num_ack_pending == 0:
                    return channel_id
            await asyncio.sleep(0.05)
        raise RuntimeError("chat's replica consumer did not take the channel within 20 s")
    finally:
        await nc.close()


async def _persister_caught_up(nats_url: str, timeout: float) -> None:
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                info = await js.consumer_info("CHAT", "chat-persister")
                if info.num_pending + info.num_ack_pending == 0:
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the persister did not catch up within {timeout:.0f} s")
    finally:
        await nc.close()


def parse_points(text: str) -> list[tuple[int, float]]:
    points = []
    for part in text.split(","):
        v, _, r = part.strip().lower().partition("x")
        points.append((int(v), float(r)))
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="100x100,250x200,500x500,1000x1000",
                        help="load points VIEWERSxMSG_PER_S, comma-separated (default 10k, 50k, 250k, 1M deliveries/s); "
                             "none: only the memory measurement")
    parser.add_argument("--seconds", type=float, default=8.0, help="sending time per load point (T)")
    parser.add_argument("--senders", type=int, default=10, help="distinct sending users (S)")
    parser.add_argument("--sample", type=int, default=10, help="viewers per point that check latency and ids")
    parser.add_argument("--viewer-processes", type=int, default=2, help="processes holding the viewer sockets")
    parser.add_argument("--idle-connections", type=int, default=5000, help="sockets for RSS per idle connection (0: skip)")
    parser.add_argument("--persister", action="store_true",
                        help="run chat's persister in the API process too (off: it is not on the fan-out path, "
                             "and on two cores it takes CPU the edge would get)")
    parser.add_argument("--profile-edge", type=Path, default=None, help="write a cProfile of the edge here")
    parser.add_argument("--output", default="chat", help="results file name under bench/results/")
    args = parser.parse_args(argv)
    points = [] if args.points == "none" else parse_points(args.points)
    if any(v < 1 or r <= 0 for v, r in points) or not 0 < args.seconds <= 120:
        parser.error("points need V >= 1 and R > 0; --seconds in (0, 120]")

    machine = machine_info()
    results: list[dict] = []
    with chat_stack(persister=args.persister, profile=args.profile_edge) as stack:
        host, port = "127.0.0.1", stack.ports["edge"]
        sender_spec = {"transport": "jetstream", "nats_url": stack.nats.url}
        memory = None
        if args.idle_connections > 0:  # first: the RSS of a fresh edge, not one that carried load
            stack.start_persister()
            room = asyncio.run(create_channel(stack.nats.url))
            memory = idle_memory(host=host, port=port, protocol="edge", room=room, server_pid=stack.edge.popen.pid,
                                 count=args.idle_connections, processes=args.viewer_processes, progress=progress)
            stack.stop_persister()
        for viewers, rate in points:
            room = asyncio.run(create_channel(stack.nats.url))
            results.append(run_point(host=host, port=port, protocol="edge", room=room, viewers=viewers,
                                     senders=min(args.senders, max(1, int(rate))), rate=rate, seconds=args.seconds,
                                     sampled=min(args.sample, viewers), processes=args.viewer_processes,
                                     sender_spec=sender_spec, cpu_groups=stack.cpu_groups,
                                     probe=EdgeProbe(port), progress=progress))
    path = write_results(args.output, machine, {
        "server": "chat edge (python -m chat_service edge), one process, uvloop",
        "path": "sender -> JetStream (chat.message envelope, as the core publishes it) -> edge -> WebSocket viewers",
        "persister": args.persister,
        "generator": {"viewerProcesses": args.viewer_processes, "sampleViewersPerPoint": args.sample,
                      "senders": args.senders, "secondsPerPoint": args.seconds},
        "targets": TARGETS,
        "points": results,
        "idleMemory": memory,
        "command": "make bench-chat  (.venv/bin/python bench/chat.py " + " ".join(sys.argv[1:] if argv is None else argv) + ")",
    })
    progress(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
