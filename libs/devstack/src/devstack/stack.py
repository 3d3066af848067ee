"""The whole platform on one machine: what `make run` starts and what the e2e tests start.

Adding a service: append a `ServiceDef` to `SERVICES` (its package must offer `python -m <module>
migrate` and `python -m <module> serve`), give it a database if it owns tables, and add its routes
to `deploy/gateway/nginx.conf.template`. See docs/adding-a-service.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.credentials import Credentials
from devstack.ports import PortInUse, ensure_free
from devstack.processes import Child, Supervisor
from devstack.servers import NatsCluster, Nginx, NatsServer, Postgres, SeaweedFS, Valkey, wait_http_ok

REPO_ROOT = Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class ServiceDef:
    name: str
    module: str
    default_port: int
    database: str | None = None
    replicas: int = 1

    @property
    def port_env(self) -> str:
        return f"{self.name.upper().replace('-', '_')}_PORT"

    @property
    def upstream_placeholder(self) -> str:
        return f"{self.name.upper().replace('-', '_')}_UPSTREAM"


SERVICES: list[ServiceDef] = [
    ServiceDef("auth", "auth_service", 8101, database="auth"),
    ServiceDef("channels", "channels_service", 8102, database="channels"),
    ServiceDef("streams", "streams_service", 8103, database="streams"),
    ServiceDef("chat", "chat_service", 8104, database="chat"),
    ServiceDef("media-gateway", "media_gateway", 8105, database="media_gateway"),
]


@dataclass(frozen=True)
class EdgeDef:
    """A chat WebSocket edge (`python -m chat_service edge`): the chat service's code and
    database, its own port and EDGE_ID; the gateway balances `GET /ws` over all of them."""

    name: str
    edge_id: str
    default_port: int

    @property
    def port_env(self) -> str:
        return f"{self.name.upper().replace('-', '_')}_PORT"


# every edge logs in to NATS as this user (contracts.access.USERS)
EDGE_NATS_USER = "chat-edge"
CREDENTIALS_FILE = "credentials.json"

CHAT_EDGES: list[EdgeDef] = [EdgeDef("chat-edge-1", "edge-1", 8111), EdgeDef("chat-edge-2", "edge-2", 8112)]


def listeners() -> list[ServiceDef | EdgeDef]:
    """Every service and chat edge: each listens on its own port of `StackConfig.service_ports`."""
    return [*SERVICES, *CHAT_EDGES]


@dataclass(frozen=True)
class IngestNode:
    """One ingest node: an nginx-rtmp and the media gateway beside it (its callbacks, /control,
    the source pull and the transcoders stay on 127.0.0.1), as one pod of the `ingest` StatefulSet
    runs them. The first node's processes keep the single-node names (`media-gateway`, `ingest`)."""

    name: str  # INGEST_NODE, in HLS URLs: ingest-0, ingest-1, ...
    index: int
    media_gateway_port: int
    rtmp_port: int
    control_port: int
    prefix: Path  # the nginx-rtmp prefix (logs/, tmp/, the pull's unix socket)

    @property
    def media_gateway_process(self) -> str:
        return "media-gateway" if self.index == 0 else f"{self.name}-media-gateway"

    @property
    def ingest_process(self) -> str:
        return "ingest" if self.index == 0 else self.name


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a port number, got {raw!r}") from None


SRT_CLAIM = "SRT ingest (UDP)"


@dataclass
class StackConfig:
    data_dir: Path
    gateway_port: int = 8080
    rtmp_port: int = 1935
    # SRT ingest (UDP): the first ingest node's media gateway listens here (docs/srt.md)
    srt_port: int = 9000
    nats_port: int = 4222
    nats_monitor_port: int = 8222
    postgres_port: int = 5433
    redis_port: int = 6380
    ingest_control_port: int = 8186
    s3_port: int = 8333
    # "s3": uploads and VODs go to SeaweedFS's S3 gateway (started here, as R2 in production);
    # "folder": to <data_dir>/objects (OBJECT_STORE=folder), no SeaweedFS
    object_store: str = "s3"
    # ingest nodes (nginx-rtmp + its media gateway); more than one puts an L4 balancer on
    # rtmp_port in front of their own RTMP ports, as the LoadBalancer Service does in Kubernetes
    ingest_nodes: int = 1
    service_ports: dict[str, int] = field(
        default_factory=lambda: {s.name: s.default_port for s in listeners()})
    durable: bool = True
    public_host: str = "localhost"
    # the chat edges' published address (an L4 Service in Kubernetes), e.g. wss://chat.example.com/ws;
    # empty: pages open /ws on the gateway. The gateway writes it into the page and its CSP.
    chat_ws_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> StackConfig:
        data_dir = Path(os.environ.get("DATA_DIR", REPO_ROOT / ".data")).resolve()
        return cls(
            data_dir=data_dir,
            gateway_port=_env_int("GATEWAY_PORT", 8080),
            rtmp_port=_env_int("RTMP_PORT", 1935),
            srt_port=_env_int("SRT_PORT", 9000),
            nats_port=_env_int("NATS_PORT", 4222),
            nats_monitor_port=_env_int("NATS_MONITOR_PORT", 8222),
            postgres_port=_env_int("POSTGRES_PORT", 5433),
            redis_port=_env_int("REDIS_PORT", 6380),
            ingest_control_port=_env_int("INGEST_CONTROL_PORT", 8186),
            s3_port=_env_int("S3_PORT", 8333),
            object_store=_object_store_kind(),
            ingest_nodes=_env_int("INGEST_NODES", 1),
            service_ports={s.name: _env_int(s.port_env, s.default_port) for s in listeners()},
            chat_ws_url=checked_chat_ws_url(os.environ.get("CHAT_WS_URL", "")),
        )

    @classmethod
    def ephemeral(cls, data_dir: Path) -> StackConfig:
        """Free ports everywhere, for tests that run beside a developer's `make run`."""
        from devstack.ports import free_ports, free_udp_port

        services = [s.name for s in listeners()]
        taken = free_ports(8 + len(services))
        ports = iter(taken)
        srt_port = free_udp_port()
        while srt_port in taken:  # one number for one thing, even across TCP and UDP
            srt_port = free_udp_port()
        return cls(
            data_dir=data_dir,
            gateway_port=next(ports),
            rtmp_port=next(ports),
            srt_port=srt_port,
            nats_port=next(ports),
            nats_monitor_port=next(ports),
            postgres_port=next(ports),
            redis_port=next(ports),
            ingest_control_port=next(ports),
            s3_port=next(ports),
            object_store=_object_store_kind(),
            service_ports={name: next(ports) for name in services},
            durable=False,
        )

    @property
    def gateway_url(self) -> str:
        return f"http://{self.public_host}:{self.gateway_port}"

    def port_claims(self) -> list[tuple[int, str, str]]:
        claims = [
            (self.gateway_port, "the gateway (HTTP)", "GATEWAY_PORT"),
            (self.nats_port, "NATS", "NATS_PORT"),
            (self.nats_monitor_port, "NATS monitoring", "NATS_MONITOR_PORT"),
            (self.postgres_port, "PostgreSQL", "POSTGRES_PORT"),
            (self.redis_port, "Valkey", "REDIS_PORT"),
            (self.rtmp_port, "RTMP ingest", "RTMP_PORT"),
            (self.ingest_control_port, "the ingest's control API", "INGEST_CONTROL_PORT"),
            (self.srt_port, SRT_CLAIM, "SRT_PORT"),
        ]
        if self.object_store == "s3":
            claims.append((self.s3_port, "the S3 store (SeaweedFS)", "S3_PORT"))
        claims += [(self.service_ports[s.name], f"the {s.name} service", s.port_env) for s in SERVICES]
        claims += [(self.service_ports[e.name], f"the chat edge {e.edge_id}", e.port_env) for e in CHAT_EDGES]
        return claims


class Stack:
    def __init__(self, config: StackConfig, *, log=print):
        self.config = config
        self.log = log
        self.sup = Supervisor(config.data_dir / "logs")
        self.nats: NatsServer | NatsCluster | None = None
        self.postgres: Postgres | None = None
        self.valkey: Valkey | None = None
        self.s3: SeaweedFS | None = None
        self.nginx: Nginx | None = None
        self.ingest: Nginx | None = None
        self.balancer: Nginx | None = None
        self.ingest_nodes: list[IngestNode] = self.plan_ingest_nodes()
        # process name -> child, of every ingest node's nginx-rtmp and media gateway (kill -9 a node)
        self.ingest_processes: dict[str, Child] = {}
        self.credentials: Credentials | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def check_ports(self) -> None:
        seen: dict[int, str] = {}
        for port, what, env in self.config.port_claims():
            if port in seen:
                raise PortInUse(port, f"{what} (also configured for {seen[port]})", env)
            seen[port] = what
            ensure_free(port, what, env, udp=what == SRT_CLAIM)

    def start(self) -> Stack:
        c = self.config
        self.check_ports()
        c.data_dir.mkdir(parents=True, exist_ok=True)
        self.log(f"[1/4] starting NATS (JetStream) on :{c.nats_port}, PostgreSQL on :{c.postgres_port}, "
                 f"Valkey on :{c.redis_port}")
        creds = self.load_credentials()
        self.nats = NatsServer(c.nats_port, c.nats_monitor_port, c.data_dir / "nats", creds).start(self.sup)
        self.postgres = Postgres(c.postgres_port, c.data_dir / "postgres", durable=c.durable).start(self.sup)
        self.valkey = Valkey(c.redis_port, c.data_dir / "valkey", durable=c.durable,
                             password=creds.valkey).start(self.sup)
        if c.object_store == "s3":
            self.log(f"      and SeaweedFS (S3) on :{c.s3_port}")
            self.s3 = SeaweedFS(c.s3_port, c.data_dir / "seaweedfs").start(self.sup)
        self.log("[2/4] applying database migrations")
        for svc in SERVICES:
            if svc.database:
                self.postgres.create_database(svc.database)
            self.migrate(svc)
        self.log("[3/4] starting services: " + ", ".join(s.name for s in listeners()))
        for svc in SERVICES:
            self.start_service(svc)
        for node in self.ingest_nodes[1:]:
            self.start_node_media_gateway(node)
        for edge in CHAT_EDGES:
            self.start_edge(edge)
        for listener in listeners():
            wait_http_ok(f"http://127.0.0.1:{c.service_ports[listener.name]}/readyz", timeout=60)
        for node in self.ingest_nodes[1:]:
            wait_http_ok(f"http://127.0.0.1:{node.media_gateway_port}/readyz", timeout=60)
        nodes = f" ({len(self.ingest_nodes)} nodes)" if len(self.ingest_nodes) > 1 else ""
        self.log(f"[4/4] starting the RTMP ingest{nodes} on :{c.rtmp_port} (SRT on :{c.srt_port}/udp) "
                 f"and the nginx gateway on :{c.gateway_port}")
        self.start_ingest()
        self.start_gateway()
        return self

    def stop(self) -> None:
        self.sup.stop_all()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- pieces ----------------------------------------------------------------------------
    def load_credentials(self) -> Credentials:
        """The NATS users' and Valkey's passwords of this data folder (made on its first start)."""
        if self.credentials is None:
            self.credentials = Credentials.load_or_create(self.config.data_dir / CREDENTIALS_FILE)
        return self.credentials

    def service_env(self, svc: ServiceDef, nats_user: str | None = None) -> dict[str, str]:
        c = self.config
        assert self.nats and self.postgres and self.valkey
        env = {
            "SERVICE_NAME": svc.name,
            "HOST": "127.0.0.1",
            "PORT": str(c.service_ports[svc.name]),
            # each process kind logs in as its own NATS user (contracts.access)
            "NATS_URL": self.nats.url_for(nats_user or svc.name),
            "REDIS_URL": self.valkey.url,
            "PUBLIC_BASE_URL": c.gateway_url,
            "JWKS_URL": f"http://127.0.0.1:{c.service_ports['auth']}/.well-known/jwks.json",
            "DATA_DIR": str(c.data_dir),
            **self.object_store_env(),
            "MEDIA_BASE_URL": "/media",
            "RTMP_URL": f"rtmp://{c.public_host}:{c.rtmp_port}/live",
            "SRT_URL": f"srt://{c.public_host}:{c.srt_port}",
            "RTMP_INTERNAL_URL": f"rtmp://127.0.0.1:{c.rtmp_port}",
            "INGEST_CONTROL_URL": f"http://127.0.0.1:{c.ingest_control_port}/control",
            "PYTHONUNBUFFERED": "1",
            **c.extra_env,
        }
        if svc.database:
            env["DATABASE_URL"] = self.postgres.url(svc.database)
        if svc.name == "channels":
            env["SIMULCAST_ENCRYPTION_KEY"] = self.load_credentials().simulcast_key
        return env

    def object_store_env(self) -> dict[str, str]:
        if self.s3 is not None:
            return self.s3.settings_env()
        return {"OBJECT_STORE_URL": f"file://{self.config.data_dir / 'objects'}"}

    def object_sources(self) -> dict[str, str]:
        """The gateway's MEDIA_SOURCE / VOD_SOURCE: the bucket (proxied) or the folder."""
        if self.s3 is not None:
            return {"MEDIA_SOURCE": f"proxy_pass {self.s3.public_url}/;",
                    "VOD_SOURCE": f"proxy_pass {self.s3.public_url}/vod/;"}
        objects = self.config.data_dir / "objects"
        return {"MEDIA_SOURCE": f"alias {objects}/;", "VOD_SOURCE": f"alias {objects}/vod/;"}

    def migrate(self, svc: ServiceDef) -> None:
        result = subprocess.run([sys.executable, "-m", svc.module, "migrate"], env={**os.environ, **self.service_env(svc)},
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"migrations of {svc.name} failed:\n{result.stdout}\n{result.stderr}")

    def start_service(self, svc: ServiceDef):
        if svc.name == "media-gateway":
            return self.start_node_media_gateway(self.ingest_nodes[0])
        return self.sup.start(svc.name, [sys.executable, "-m", svc.module, "serve"], env=self.service_env(svc))

    # ---- ingest nodes ----------------------------------------------------------------------
    def plan_ingest_nodes(self) -> list[IngestNode]:
        """The first node on the configured ports (its RTMP port moves behind the balancer when
        there are several), the others on free ones."""
        from devstack.ports import free_ports

        c = self.config
        count = max(1, c.ingest_nodes)
        spare = iter(free_ports(3 * count))
        nodes = [IngestNode("ingest-0", 0, c.service_ports["media-gateway"],
                            next(spare) if count > 1 else c.rtmp_port, c.ingest_control_port, c.data_dir / "ingest")]
        for i in range(1, count):
            nodes.append(IngestNode(f"ingest-{i}", i, next(spare), next(spare), next(spare),
                                    c.data_dir / f"ingest-{i}"))
        return nodes

    def node_env(self, node: IngestNode) -> dict[str, str]:
        svc = next(s for s in SERVICES if s.name == "media-gateway")
        env = {**self.service_env(svc), "PORT": str(node.media_gateway_port), "INGEST_NODE": node.name,
               "RTMP_INTERNAL_URL": f"rtmp://127.0.0.1:{node.rtmp_port}",
               "INGEST_CONTROL_URL": f"http://127.0.0.1:{node.control_port}/control"}
        if node.index == 0:
            # one SRT listener: the first node's (RTMP has an L4 balancer over several nodes;
            # SRT callers of a multi-node devstack all land on ingest-0, which is enough here)
            env["SRT_PORT"] = str(self.config.srt_port)
        return env

    def start_node_media_gateway(self, node: IngestNode) -> Child:
        svc = next(s for s in SERVICES if s.name == "media-gateway")
        child = self.sup.start(node.media_gateway_process, [sys.executable, "-m", svc.module, "serve"],
                               env=self.node_env(node))
        self.ingest_processes[node.media_gateway_process] = child
        return child

    def hls_origins(self) -> dict[str, str]:
        """Node name -> the media gateway serving its LL-HLS (the gateway routes /hls/<node>/ there)."""
        return {node.name: f"127.0.0.1:{node.media_gateway_port}" for node in self.ingest_nodes}

    def start_edge(self, edge: EdgeDef):
        chat = next(s for s in SERVICES if s.name == "chat")
        env = {**self.service_env(chat, nats_user=EDGE_NATS_USER), "SERVICE_NAME": edge.name, "EDGE_ID": edge.edge_id,
               "PORT": str(self.config.service_ports[edge.name])}
        # browsers on this stack's gateway (whatever its port) are the pages allowed to open /ws
        port = self.config.gateway_port
        env.setdefault("ALLOWED_ORIGINS", "[" + ",".join(
            f'"{o}"' for o in dict.fromkeys([self.config.gateway_url, f"http://127.0.0.1:{port}",
                                             f"http://localhost:{port}"])) + "]")
        return self.sup.start(edge.name, [sys.executable, "-m", chat.module, "edge"], env=env)

    def gateway_overrides(self) -> dict[str, str]:
        """Gateway template values a variant of the stack replaces (devstack.cluster: several
        servers per upstream)."""
        return {}

    def render_gateway(self) -> Path:
        c = self.config
        prefix = c.data_dir / "nginx"
        for sub in ("logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # workers drop to nobody: they must be able to write request bodies and read media
            for path in [prefix / "tmp", *sorted((prefix / "tmp").iterdir())]:
                os.chmod(path, 0o777)
        if self.s3 is None:
            (c.data_dir / "objects").mkdir(parents=True, exist_ok=True)
        values = {
            "GATEWAY_LISTEN": f"127.0.0.1:{c.gateway_port}",
            "PREFIX": str(prefix),
            "WEB_ROOT": str(REPO_ROOT / "web"),
            **self.object_sources(),
            "ERROR_PAGES": str(REPO_ROOT / "deploy" / "gateway" / "errors"),
            "USER_DIRECTIVE": "user nobody nogroup;" if os.geteuid() == 0 else "",
            "CHAT_WS_URL": checked_chat_ws_url(c.chat_ws_url),
            # each node's nginx-rtmp calls its own media gateway, which holds its sessions' transcoders
            **hls_origin_values(self.hls_origins()),
        }
        for svc in SERVICES:
            values[svc.upstream_placeholder] = f"127.0.0.1:{c.service_ports[svc.name]}"
        # webhooks and the media gateway's API: any node's
        values["MEDIA_GATEWAY_UPSTREAM"] = ";\n        server ".join(self.hls_origins().values())
        values["CHAT_EDGE_SERVERS"] = " ".join(f"server 127.0.0.1:{c.service_ports[e.name]};" for e in CHAT_EDGES)
        values.update(self.gateway_overrides())
        template = (REPO_ROOT / "deploy" / "gateway" / "nginx.conf.template").read_text()
        out = prefix / "nginx.conf"
        out.write_text(render_template(template, values))
        return out

    def start_ingest(self) -> None:
        """Every node's nginx-rtmp, and the balancer in front of them when there are several."""
        for node in self.ingest_nodes:
            child = self.start_node_ingest(node)
            self.ingest_processes[node.ingest_process] = child
        if len(self.ingest_nodes) > 1:
            self.start_rtmp_balancer()

    def start_rtmp_balancer(self) -> None:
        c = self.config
        prefix = c.data_dir / "rtmp-balancer"
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        servers = " ".join(f"server 127.0.0.1:{node.rtmp_port} max_fails=1 fail_timeout=10s;"
                           for node in self.ingest_nodes)
        template = (REPO_ROOT / "deploy" / "ingest" / "rtmp-balancer.conf.template").read_text()
        conf = prefix / "nginx.conf"
        conf.write_text(render_template(template, {"PREFIX": str(prefix), "RTMP_LISTEN": f"0.0.0.0:{c.rtmp_port}",
                                                   "RTMP_SERVERS": servers}))
        self.balancer = Nginx(conf, prefix, c.rtmp_port).start(self.sup, "rtmp-balancer")

    def start_node_ingest(self, node: IngestNode) -> Child:
        """nginx-rtmp: on_publish asks the media gateway, which renames the stream to an opaque id."""
        from media_gateway.ingest.nginx_conf import render_ingest_config

        c = self.config
        # recordings are shared: any node's recording worker may remux any node's FLV (in
        # Kubernetes the `media` volume)
        prefix, rec, vod = node.prefix, c.data_dir / "recordings", c.data_dir / "vod"
        for d in (prefix / "logs", prefix / "tmp", rec, vod):
            d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # workers run as nobody
            for d in (prefix / "logs", prefix / "tmp", rec):
                os.chmod(d, 0o777)
        values = {
            "USER_DIRECTIVE": "user nobody nogroup;" if os.geteuid() == 0 else "",
            "PREFIX": str(prefix),
            "RTMP_LISTEN": f"0.0.0.0:{node.rtmp_port}",
            "MEDIA_GATEWAY_UPSTREAM": f"127.0.0.1:{node.media_gateway_port}",
            "RECORD_ROOT": str(rec),
            "CONTROL_LISTEN": f"127.0.0.1:{node.control_port}",
        }
        template = (REPO_ROOT / "deploy" / "ingest" / "nginx-rtmp.conf.template").read_text()
        conf = prefix / "nginx.conf"
        conf.write_text(render_ingest_config(values, ladder=os.environ.get("INGEST_LADDER"), template=template))
        # a socket left by a killed nginx would refuse the bind (src pulls from live through it)
        (prefix / "rtmp.sock").unlink(missing_ok=True)
        ingest = Nginx(conf, prefix, node.rtmp_port).start(self.sup, node.ingest_process)
        if node.index == 0:
            self.ingest = ingest
        assert ingest.child is not None  # start() sets it or raises
        return ingest.child

    def start_gateway(self) -> None:
        conf = self.render_gateway()
        self.nginx = Nginx(conf, conf.parent, self.config.gateway_port).start(self.sup)

    def nats_refusals(self) -> list[str]:
        """Every publish or subscription NATS refused a process of this stack so far (a subject
        missing from contracts.access), as the servers logged them."""
        nodes = self.nats.nodes if isinstance(self.nats, NatsCluster) else [self.nats] if self.nats else []
        return [line for node in nodes for line in node.permission_violations()[0]]

    def watch(self) -> None:
        """Block until Ctrl-C or until a child dies (then say which and why)."""
        while True:
            dead = self.sup.first_dead()
            if dead is not None:
                raise RuntimeError(f"{dead.name} stopped unexpectedly (exit {dead.popen.returncode}).\n"
                                   f"Last lines of {dead.log_path}:\n{dead.tail()}")
            time.sleep(0.5)


def _object_store_kind() -> str:
    kind = os.environ.get("OBJECT_STORE", "s3") or "s3"
    if kind not in ("s3", "folder"):
        raise SystemExit(f"OBJECT_STORE must be s3 (SeaweedFS) or folder, got {kind!r}")
    return kind


_NODE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def parse_hls_origins(text: str) -> dict[str, str]:
    """`HLS_ORIGINS`: `<node>=<host:port>,...`, the ingest nodes' media gateways by node name."""
    origins: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, address = item.partition("=")
        if not sep or not _NODE.fullmatch(node) or not address or any(c in address for c in " ;{}\n"):
            raise ValueError(f"HLS_ORIGINS wants <node>=<host:port>,... (node a DNS label); got {item!r}")
        origins[node] = address
    if not origins:
        raise ValueError("HLS_ORIGINS names no ingest node")
    return origins


def hls_origin_values(origins: dict[str, str]) -> dict[str, str]:
    """The gateway template's HLS_ORIGIN_UPSTREAMS and HLS_ORIGIN_MAP: one upstream per ingest
    node and the map from `/hls/<node>/` to it (deploy/docker/gateway-entrypoint.sh writes the
    same from the environment's HLS_ORIGINS)."""
    upstreams, entries = [], []
    for node, address in origins.items():
        name = "hls_origin_" + node.replace("-", "_")
        upstreams.append(f"upstream {name} {{ server {address}; keepalive 64; }}")
        entries.append(f"~^/hls/{node}/ {name};")
    return {"HLS_ORIGIN_UPSTREAMS": "\n    ".join(upstreams), "HLS_ORIGIN_MAP": "\n        ".join(entries)}


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Z0-9_]+)\s*\}\}")


_CHAT_WS_URL = re.compile(r"wss?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?")


def checked_chat_ws_url(value: str) -> str:
    """CHAT_WS_URL, or a ValueError: it goes into an HTML attribute and a CSP source list, so
    nothing but a plain ws(s) URL (no quotes, spaces, semicolons or query) is accepted."""
    if value and not _CHAT_WS_URL.fullmatch(value):
        raise ValueError(f"CHAT_WS_URL must be a ws:// or wss:// URL without query or quotes, not {value!r}")
    return value


def render_template(template: str, values: dict[str, str]) -> str:
    """`{{NAME}}` placeholders; `$` stays nginx's own. An unknown placeholder is an error."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise RuntimeError(f"gateway template needs {key}, which nothing provides")
        return values[key]

    return _PLACEHOLDER.sub(sub, template)
