"""A multi-node rehearsal on one machine: what production runs on several hosts, on loopback.

- NATS: `nats_nodes` nats-server processes clustered over `cluster {}` routes, each with its own
  JetStream store; services get every node in `NATS_URL` and create their streams with
  `JETSTREAM_REPLICAS` = 3 (an acknowledged publish is then on a majority of nodes);
- every service in `copies` processes on distinct ports, the gateway balancing each upstream over
  all of them (migrations run once, before any copy starts);
- `edges` chat WebSocket edges behind the gateway's `/ws` upstream.

PostgreSQL, Valkey and the RTMP ingest stay single (the ingest's callbacks go to the first media
gateway copy: nginx-rtmp's `on_publish` takes one URL). `tests/cluster/` drives it and kills parts
of it with `kill -9` (`ClusterStack.crash`).
"""

from __future__ import annotations

import sys
import time

import httpx

from devstack.ports import free_port
from devstack.processes import Child, StartupFailed
from devstack.servers import NatsCluster, NatsServer, Postgres, SeaweedFS, Valkey, wait_http_ok
from devstack.stack import CHAT_EDGES, SERVICES, EdgeDef, Stack, StackConfig

CLUSTER_NAME = "streamplatform"


class ClusterStack(Stack):
    def __init__(self, config: StackConfig, *, nats_nodes: int = 3, copies: int = 2, edges: int = 3,
                 log=print):
        super().__init__(config, log=log)
        self.nats_nodes = nats_nodes
        self.copies = copies
        self.edge_count = edges
        # streams are created replicated over the cluster (never more copies than nodes)
        config.extra_env.setdefault("JETSTREAM_REPLICAS", str(min(3, nats_nodes)))
        # service name -> the ports of its copies; process name -> child
        self.copy_ports: dict[str, list[int]] = {}
        self.processes: dict[str, Child] = {}
        self.edges: list[EdgeDef] = []
        self._claimed: set[int] = set()

    def free_port(self) -> int:
        """A free port none of this stack's processes was promised yet (an unbound promised port
        is still "free" to the OS, and two processes handed one port would race for it)."""
        claimed = self._claimed | {port for port, _, _ in self.config.port_claims()}
        while True:
            port = free_port()
            if port not in claimed:
                self._claimed.add(port)
                return port

    # ---- NATS ------------------------------------------------------------------------------
    def start_nats_cluster(self) -> NatsCluster:
        c = self.config
        ports = [(c.nats_port, c.nats_monitor_port, self.free_port())]
        for _ in range(self.nats_nodes - 1):
            ports.append((self.free_port(), self.free_port(), self.free_port()))
        nodes = []
        for i, (port, monitor, route_port) in enumerate(ports):
            name = f"nats-{i + 1}"
            routes = ",".join(f"nats://127.0.0.1:{r}" for _, _, r in ports if r != route_port)
            node = NatsServer(port, monitor, c.data_dir / name, self.load_credentials())
            node.start(self.sup, name, extra_args=[
                "--server_name", name, "--cluster_name", CLUSTER_NAME,
                "--cluster", f"nats://127.0.0.1:{route_port}", "--routes", routes])
            assert node.child is not None  # start() sets it or raises
            self.processes[name] = node.child
            nodes.append(node)
        wait_for_jetstream_quorum(nodes, timeout=60)
        return NatsCluster(nodes)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> ClusterStack:
        c = self.config
        c.data_dir.mkdir(parents=True, exist_ok=True)
        self.log(f"[1/4] starting {self.nats_nodes} clustered NATS nodes, PostgreSQL and Valkey")
        self.nats = self.start_nats_cluster()
        self.postgres = Postgres(c.postgres_port, c.data_dir / "postgres", durable=c.durable).start(self.sup)
        self.valkey = Valkey(c.redis_port, c.data_dir / "valkey", durable=c.durable,
                             password=self.load_credentials().valkey).start(self.sup)
        if c.object_store == "s3":
            self.s3 = SeaweedFS(c.s3_port, c.data_dir / "seaweedfs").start(self.sup)
        self.log("[2/4] applying database migrations")
        for svc in SERVICES:
            if svc.database:
                self.postgres.create_database(svc.database)
            self.migrate(svc)
        self.log(f"[3/4] starting {self.copies} copies of every service and {self.edge_count} chat edges")
        # one ingest node, whose callbacks and HLS go to the first media gateway copy
        self.ingest_nodes = self.plan_ingest_nodes()[:1]
        for svc in SERVICES:
            ports = [c.service_ports[svc.name]] + [self.free_port() for _ in range(self.copies - 1)]
            self.copy_ports[svc.name] = ports
            for i, port in enumerate(ports):
                self.start_copy(svc, i, port)
        self.edges = self._edge_defs()
        for edge in self.edges:
            self.processes[edge.name] = self.start_edge(edge)
        waits = [(f"{name}-{i + 1}", port) for name, ports in self.copy_ports.items()
                 for i, port in enumerate(ports)]
        waits += [(edge.name, c.service_ports[edge.name]) for edge in self.edges]
        for name, port in waits:
            try:
                wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=90)
            except TimeoutError as exc:
                self._raise_if_one_died()
                child = self.processes.get(name)
                tail = child.tail() if child is not None else "(no log)"
                raise StartupFailed(f"{name} is not ready on :{port}: {exc}\nLast lines of its log:\n{tail}") from exc
        # a copy that lost its port to another process answers nothing: its log says why
        self._raise_if_one_died()
        self.log(f"[4/4] starting the RTMP ingest on :{c.rtmp_port} and the gateway on :{c.gateway_port}")
        self.start_ingest()
        self.start_gateway()
        return self

    def _raise_if_one_died(self) -> None:
        dead = self.sup.first_dead()
        if dead is not None:
            raise StartupFailed(f"{dead.name} exited with {dead.popen.returncode}:\n{dead.tail()}")

    def start_copy(self, svc, index: int, port: int) -> Child:
        name = f"{svc.name}-{index + 1}"
        env = {**self.service_env(svc), "PORT": str(port)}
        child = self.sup.start(name, [sys.executable, "-m", svc.module, "serve"], env=env)
        self.processes[name] = child
        return child

    def _edge_defs(self) -> list[EdgeDef]:
        """The stack's chat edges, plus more of the same kind until there are `edge_count`."""
        edges = list(CHAT_EDGES[: self.edge_count])
        for i in range(len(edges), self.edge_count):
            edges.append(EdgeDef(f"chat-edge-{i + 1}", f"edge-{i + 1}", 0))
        for edge in edges:
            if edge.name not in self.config.service_ports:
                self.config.service_ports[edge.name] = self.free_port()
        return edges

    def gateway_overrides(self) -> dict[str, str]:
        """Every upstream lists all copies of its service (the template writes `server {{X}};`,
        so further servers follow the first one's semicolon), and `/ws` every edge."""
        values = {}
        for svc in SERVICES:
            addresses = [f"127.0.0.1:{p}" for p in self.copy_ports.get(svc.name, [])]
            if addresses:
                values[svc.upstream_placeholder] = ";\n        server ".join(addresses)
        if self.edges:
            values["CHAT_EDGE_SERVERS"] = " ".join(
                f"server 127.0.0.1:{self.config.service_ports[e.name]};" for e in self.edges)
        return values

    # ---- faults ----------------------------------------------------------------------------
    def crash(self, name: str) -> None:
        """kill -9 one process (a NATS node `nats-2`, an edge `chat-edge-3`, a copy `chat-2`)."""
        child = self.processes.pop(name)
        self.sup.kill(child)

    def edge_port(self, name: str) -> int:
        return self.config.service_ports[name]


def jetstream_meta_leader(monitor_port: int) -> str | None:
    info = httpx.get(f"http://127.0.0.1:{monitor_port}/jsz", timeout=2).json()
    meta = info.get("meta_cluster") or {}
    return meta.get("leader") or None


def wait_for_jetstream_quorum(nodes: list[NatsServer], timeout: float) -> None:
    """Streams can be created only once the nodes agree on a JetStream meta leader."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            leaders = {jetstream_meta_leader(n.monitor_port) for n in nodes}
            if len(leaders) == 1 and None not in leaders:
                return
            last = leaders
        except (httpx.HTTPError, ValueError) as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"the NATS nodes found no JetStream meta leader within {timeout}s ({last})")
