"""The multi-host rehearsal: the rendered Kubernetes manifests, run on Linux network namespaces.

Every pod of every Deployment/StatefulSet gets a network namespace of its own (its "node"), with
its own address on one bridge that has no route off it (nothing leaves the machine). Service names
resolve through a hosts file per namespace (/etc/netns/<ns>/hosts, which `ip netns exec` binds
over /etc/hosts). Containers start as the manifests say: the same command/args ($(VAR) expanded
as the kubelet does), exactly the environment they give (env, envFrom ConfigMaps, Secrets from
the test's fixture, downward-API fields), their volumes bind-mounted at their mountPaths inside a
private mount namespace. There is no Docker: an image is the local virtual environment plus the
files its Dockerfile would copy (IMAGES below).

What is emulated, not run from the manifest, is said where it happens (PostgreSQL's image
entrypoint; exec probes). Connections actually made are read from every namespace's sockets and
checked against the NetworkPolicies (`policy_violations`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NAMESPACE = "streamplatform-dev"


def _valkey_server() -> str:
    from devstack.servers import valkey_server_binary

    return valkey_server_binary()


@dataclass(frozen=True)
class Image:
    """What a container image holds, as local paths: its entrypoint and the files it copies in."""

    entrypoint: list[str]
    files: dict[str, Path] = field(default_factory=dict)  # path in the image -> local path
    # an image whose entrypoint execs its first argument (`docker-entrypoint.sh valkey-server ...`)
    programs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # the Dockerfile's ENV


PATH = f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# deploy/docker/Dockerfile, python-runtime: ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 ... HOST=0.0.0.0
PYTHON_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "HOST": "0.0.0.0"}


def _python(module: str) -> Image:
    return Image([sys.executable, "-m", module], env=PYTHON_ENV)


IMAGES: dict[str, Image] = {
    "streamplatform/auth": _python("auth_service"),
    "streamplatform/channels": _python("channels_service"),
    "streamplatform/streams": _python("streams_service"),
    "streamplatform/chat": _python("chat_service"),
    "streamplatform/media-gateway": _python("media_gateway"),
    "streamplatform/ingest": Image([sys.executable, "/usr/local/bin/ingest-entrypoint.py"], {
        "/usr/local/bin/ingest-entrypoint.py": REPO / "deploy/docker/ingest-entrypoint.py",
        "/etc/streamplatform/nginx-rtmp.conf.template": REPO / "deploy/ingest/nginx-rtmp.conf.template"},
        env=PYTHON_ENV),
    "streamplatform/gateway": Image(["sh", "/usr/local/bin/gateway-entrypoint.sh"], {
        "/usr/local/bin/gateway-entrypoint.sh": REPO / "deploy/docker/gateway-entrypoint.sh",
        "/etc/streamplatform/nginx.conf.template": REPO / "deploy/gateway/nginx.conf.template",
        "/srv/web": REPO / "web", "/srv/errors": REPO / "deploy/gateway/errors"}),
    "nats": Image([str(VENV_BIN / "nats-server")]),
    "valkey/valkey": Image([], programs={"valkey-server": "valkey"}),
    "chrislusf/seaweedfs": Image([], programs={"weed": str(VENV_BIN / "weed")}),
    # its entrypoint (initdb, the init scripts) is emulated: Rehearsal._start_postgres
    "postgres": Image([]),
}


def image_of(ref: str) -> Image:
    name = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    if name not in IMAGES:
        raise KeyError(f"the rehearsal has no local stand-in for the image {ref!r}")
    return IMAGES[name]


def render(overlay: str) -> list[dict]:
    kubectl = VENV_BIN / "kubectl"
    out = subprocess.run([str(kubectl), "kustomize", str(REPO / "deploy/k8s/overlays" / overlay)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def selects(selector: dict, labels: dict) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if (op == "In" and value not in expr["values"]) or (op == "NotIn" and value in expr["values"]) \
                or (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's $(VAR) expansion: a defined variable is replaced, anything else stays."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


@dataclass
class Pod:
    name: str  # nats-0, auth-1
    workload: dict
    index: int
    ip: str
    netns: str
    labels: dict
    processes: list[subprocess.Popen] = field(default_factory=list)
    link: str = ""  # the bridge's end of the node's veth pair: down = the node is cut off

    @property
    def spec(self) -> dict:
        return self.workload["spec"]["template"]["spec"]

    @property
    def kind(self) -> str:
        return self.workload["kind"]

    @property
    def app(self) -> str:
        return self.workload["metadata"]["name"]

    def declared_ports(self) -> dict[str, int]:
        return {p.get("name", str(p["containerPort"])): p["containerPort"]
                for c in self.spec["containers"] for p in c.get("ports", [])}


class Rehearsal:
    """Start with `up(only=...)`, stop with `down()` (also on failure: use it as a context manager)."""

    def __init__(self, docs: list[dict], secrets: dict[str, dict[str, str]], root: Path, *,
                 replicas: dict[str, int] | None = None, subnet: int = 0):
        self.docs = docs
        self.secrets = secrets
        self.root = root
        self.replicas = replicas or {}
        # the subnet too: a test's own small rehearsal runs while the package's big one is up
        tag = f"{os.getpid() % 100000}s{subnet}"
        self.prefix = f"sp{tag}"
        self.bridge = f"spbr{tag}"
        self.net = f"10.{200 + subnet % 50}.{os.getpid() % 250}"
        self.host_ip = f"{self.net}.1"
        self.pods: list[Pod] = []
        self.created_dirs: list[Path] = []
        self._mountpoint_lock = threading.Lock()
        self.connections: set[tuple[str, str, int]] = set()  # (client pod or "host", server pod, port)
        self.config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
        self.services = [d for d in docs if d["kind"] == "Service"]
        self.policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
        self.workloads = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}

    # ---- network ------------------------------------------------------------------------------
    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)

    def _make_bridge(self) -> None:
        self._ip("link", "add", self.bridge, "type", "bridge")
        self._ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")

    def _make_node(self, pod: Pod, n: int) -> None:
        ns, host_end, node_end = pod.netns, f"{self.prefix}h{n}", f"{self.prefix}n{n}"
        self._ip("netns", "add", ns)
        self._ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
        self._ip("link", "set", node_end, "netns", ns)
        pod.link = host_end
        self._ip("link", "set", host_end, "master", self.bridge)
        self._ip("link", "set", host_end, "up")
        self._ip("-n", ns, "addr", "add", f"{pod.ip}/24", "dev", node_end)
        self._ip("-n", ns, "link", "set", node_end, "up")
        self._ip("-n", ns, "link", "set", "lo", "up")
        # no default route: only the bridge's /24 is reachable

    def _hosts_files(self) -> None:
        for client_n, pod in enumerate(self.pods):
            lines = ["127.0.0.1 localhost", f"{pod.ip} {pod.name}"]
            for svc in self.services:
                name = svc["metadata"]["name"]
                backends = [p for p in self.pods if selects({"matchLabels": svc["spec"].get("selector", {})}, p.labels)]
                if not backends:
                    continue
                if svc["spec"].get("clusterIP") == "None":
                    for b in backends:  # headless: every pod by name
                        lines.append(f"{b.ip} {b.name}.{name} {b.name}.{name}.{NAMESPACE}.svc.cluster.local")
                # a ClusterIP Service: this client always reaches the same pod, spread over clients
                # (kube-proxy picks per connection; a hosts file can only pick per client)
                chosen = backends[client_n % len(backends)]
                lines.append(f"{chosen.ip} {name} {name}.{NAMESPACE} {name}.{NAMESPACE}.svc.cluster.local")
            folder = Path("/etc/netns") / pod.netns
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text("\n".join(lines) + "\n")

    # ---- pods ---------------------------------------------------------------------------------
    def plan(self, only: list[str]) -> None:
        n = 0
        for name in only:
            workload = self.workloads[name]
            count = self.replicas.get(name, workload["spec"].get("replicas") or 1)
            for i in range(count):
                n += 1
                pod_name = f"{name}-{i}" if workload["kind"] == "StatefulSet" else f"{name}-r{i}"
                labels = dict(workload["spec"]["template"]["metadata"]["labels"])
                if workload["kind"] == "StatefulSet":
                    # what the StatefulSet controller adds to each pod (per-pod Services select it)
                    labels["statefulset.kubernetes.io/pod-name"] = pod_name
                self.pods.append(Pod(pod_name, workload, i, f"{self.net}.{10 + n}", f"{self.prefix}-{pod_name}",
                                     labels))

    def env_for(self, pod: Pod, container: dict) -> dict[str, str]:
        env: dict[str, str] = {"PATH": PATH, **image_of(container["image"]).env, "HOSTNAME": pod.name}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.config_maps[source["configMapRef"]["name"]])
            elif "secretRef" in source:
                env.update(self.secrets[source["secretRef"]["name"]])
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = expand(str(var["value"]), env)
                continue
            ref = var.get("valueFrom", {})
            if "secretKeyRef" in ref:
                r = ref["secretKeyRef"]
                secret = self.secrets.get(r["name"])
                if secret is None or r["key"] not in secret:
                    if r.get("optional"):
                        continue
                    raise KeyError(f"{pod.name}: Secret {r['name']}/{r['key']} is not in the fixture")
                env[var["name"]] = secret[r["key"]]
            elif "configMapKeyRef" in ref:
                r = ref["configMapKeyRef"]
                env[var["name"]] = self.config_maps[r["name"]][r["key"]]
            elif "fieldRef" in ref:
                env[var["name"]] = {"metadata.name": pod.name, "metadata.namespace": NAMESPACE,
                                    "status.podIP": pod.ip, "spec.nodeName": pod.netns,
                                    "status.hostIP": pod.ip}[ref["fieldRef"]["fieldPath"]]
            else:
                raise KeyError(f"{pod.name}: unsupported valueFrom {ref}")
        return env

    def volumes_for(self, pod: Pod, container: dict) -> list[tuple[Path, str, bool]]:
        """(local folder or file, mountPath, read-only) for the container's volumeMounts."""
        pod_root = self.root / "pods" / pod.name
        by_name = {v["name"]: v for v in pod.spec.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in pod.workload["spec"].get("volumeClaimTemplates", [])}
        mounts = []
        for m in container.get("volumeMounts", []):
            name, source = m["name"], None
            v = by_name.get(name)
            if name in claims and v is None:
                source = pod_root / "claims" / name
                source.mkdir(parents=True, exist_ok=True)
            elif v is None:
                raise KeyError(f"{pod.name}: volumeMount {name} names no volume")
            elif "emptyDir" in v:
                source = pod_root / "empty" / name
                source.mkdir(parents=True, exist_ok=True)
                os.chmod(source, 0o1777)  # nginx workers (nobody) write their temp files here
            elif "persistentVolumeClaim" in v:  # ReadWriteMany: one folder for every pod
                source = self.root / "claims" / v["persistentVolumeClaim"]["claimName"]
                source.mkdir(parents=True, exist_ok=True)
                os.chmod(source, 0o1777)
            elif "configMap" in v or "secret" in v:
                data = (self.config_maps[v["configMap"]["name"]] if "configMap" in v
                        else self.secrets[v["secret"]["secretName"]])
                source = pod_root / "files" / name
                source.mkdir(parents=True, exist_ok=True)
                for key, value in data.items():
                    (source / key).write_text(value)
            else:
                raise KeyError(f"{pod.name}: unsupported volume {v}")
            mounts.append((source, m["mountPath"], bool(m.get("readOnly"))))
        return mounts

    def argv_for(self, container: dict, env: dict[str, str]) -> list[str]:
        image = image_of(container["image"])
        command = [expand(a, env) for a in container.get("command", [])]
        args = [expand(a, env) for a in container.get("args", [])]
        if command:
            head = image.programs.get(command[0], command[0])
            return [self._program(head), *command[1:], *args]
        if image.entrypoint:
            return [*image.entrypoint, *args]
        if args and args[0] in image.programs:
            return [self._program(image.programs[args[0]]), *args[1:]]
        raise KeyError(f"{container['image']}: no entrypoint and no known program in {args[:1]}")

    @staticmethod
    def _program(name: str) -> str:
        return _valkey_server() if name == "valkey" else name

    def _launch(self, pod: Pod, container: dict, *, wait: bool) -> subprocess.Popen:
        env = self.env_for(pod, container)
        argv = self.argv_for(container, env)
        image = image_of(container["image"])
        binds = [(src, dst, True) for dst, src in image.files.items()] + self.volumes_for(pod, container)
        binds = self._keep_repo_visible(binds, self.root / "pods" / pod.name / "checkout")
        log = self.root / "logs" / f"{pod.name}.{container['name']}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        spec = self.root / "pods" / pod.name / f"{container['name']}.launch"
        spec.write_text(repr({"binds": [(str(s), d, ro) for s, d, ro in binds], "argv": argv, "env": env,
                              "workdir": str(spec.parent)}))
        for _src, dst, _ro in binds:
            self._mountpoint(Path(dst), is_file=Path(_src).is_file())
        proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, sys.executable, str(Path(__file__).with_name("launch.py")),
                                 str(spec)], stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={"PATH": os.environ["PATH"]}, start_new_session=True)
        if not wait:
            pod.processes.append(proc)
        else:  # an init container: runs to completion before the pod's containers start
            code = proc.wait(timeout=240)
            if code != 0:
                raise RuntimeError(f"{pod.name}/{container['name']} exited {code}:\n{log.read_text()[-3000:]}")
        return proc

    @staticmethod
    def _keep_repo_visible(binds: list[tuple[Path, str, bool]], side: Path) -> list[tuple[Path, str, bool]]:
        """The "image" is this checkout and its .venv. A volume mounted over a folder holding the
        checkout (every service's emptyDir at /tmp, when CI clones into /tmp) would hide the
        programs the container runs, which a real image never has under /tmp. So the checkout is
        first bound aside (before anything hides it), then back at its own path on top."""
        for source, target, _ro in binds:
            if Path(target) != REPO and Path(target) in REPO.parents and Path(source).is_dir():
                (Path(source) / REPO.relative_to(target)).mkdir(parents=True, exist_ok=True)
                side.mkdir(parents=True, exist_ok=True)
                return [(REPO, str(side), False), *binds, (side, str(REPO), False)]
        return binds

    def _mountpoint(self, path: Path, is_file: bool) -> None:
        """A bind mount needs its target to exist; what we create we remove in down(). Pods start
        from a thread pool and several mount the same path (the three NATS pods' /etc/nats): one
        lock, so the second does not find it half made."""
        with self._mountpoint_lock:
            self._make_mountpoint(path, is_file)

    def _make_mountpoint(self, path: Path, is_file: bool) -> None:
        missing = []
        p = path if not is_file else path.parent
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            d.mkdir()
            self.created_dirs.append(d)
        if is_file and not path.exists():
            path.touch()
            self.created_dirs.append(path)

    def start_pod(self, pod: Pod) -> None:
        if pod.app == "postgres":
            self._start_postgres(pod)
            return
        for init in pod.spec.get("initContainers", []):
            self._launch(pod, init, wait=True)
        for container in pod.spec["containers"]:
            self._launch(pod, container, wait=False)

    def _start_postgres(self, pod: Pod) -> None:
        """EMULATED: the postgres image's entrypoint (initdb with POSTGRES_USER, run the
        /docker-entrypoint-initdb.d scripts, listen on every address) with the pgserver binaries,
        trust authentication (the password from the Secret is accepted, not checked)."""
        from devstack.servers import PG_SYSTEM_USER, Postgres, postgres_bin_dir

        container = pod.spec["containers"][0]
        env = self.env_for(pod, container)
        data = self.root / "pods" / pod.name / "pgdata"
        pg = Postgres(5432, data)
        demote = pg._as_db_user()
        bindir = postgres_bin_dir()
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", env["POSTGRES_USER"], "--auth=trust",
                        "-E", "UTF8", "--locale=C"], check=True, capture_output=True, preexec_fn=demote)
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write("host all all 0.0.0.0/0 trust\n")
        port = next(p["containerPort"] for p in container["ports"])
        log = self.root / "logs" / f"{pod.name}.postgres.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        import pwd

        user = pwd.getpwnam(PG_SYSTEM_USER) if demote else None
        drop = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"] if user else []
        proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, *drop, str(bindir / "postgres"), "-D", str(data),
                                 "-p", str(port), "-c", "listen_addresses=*", "-c", "unix_socket_directories=",
                                 "-c", "fsync=off", "-c", "max_connections=300"],
                                stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        pod.processes.append(proc)
        self.wait_tcp(pod.ip, port, 60, pod)
        import psycopg

        with psycopg.connect(f"postgresql://{env['POSTGRES_USER']}@{pod.ip}:{port}/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{env["POSTGRES_DB"]}"')
        init = next(v for v in pod.spec["volumes"] if v["name"] == "init")
        for _name, sql in sorted(self.config_maps[init["configMap"]["name"]].items()):
            with psycopg.connect(f"postgresql://{env['POSTGRES_USER']}@{pod.ip}:{port}/{env['POSTGRES_DB']}",
                                 autocommit=True) as c:
                for statement in filter(None, (s.strip() for s in sql.split(";"))):
                    c.execute(statement)

    # ---- faults -------------------------------------------------------------------------------
    def crash(self, pod: Pod) -> None:
        """kill -9 of every process of the pod (its containers' whole process groups)."""
        for proc in pod.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
        for proc in pod.processes:
            proc.wait(timeout=20)
        pod.processes.clear()

    def restart(self, pod: Pod) -> None:
        """What the kubelet does after a crash: the pod's containers again, on the same node."""
        self.start_pod(pod)
        self.wait_ready(pod)

    def partition(self, pod: Pod) -> None:
        """Link down between the node and the bridge: its processes run on, reaching nobody."""
        self._ip("link", "set", pod.link, "down")

    def heal(self, pod: Pod) -> None:
        self._ip("link", "set", pod.link, "up")

    def pod(self, name: str) -> Pod:
        return next(p for p in self.pods if p.name == name)

    # ---- readiness ----------------------------------------------------------------------------
    def wait_tcp(self, ip: str, port: int, timeout: float, pod: Pod) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(pod)
            with contextlib.suppress(OSError), socket.create_connection((ip, port), timeout=1):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{pod.name}: nothing listens on {ip}:{port} after {timeout}s")

    def _check_alive(self, pod: Pod) -> None:
        for proc in pod.processes:
            if proc.poll() is not None:
                logs = "\n".join(p.read_text()[-2000:] for p in (self.root / "logs").glob(f"{pod.name}.*.log"))
                raise RuntimeError(f"{pod.name} exited ({proc.returncode}):\n{logs}")

    def wait_ready(self, pod: Pod, timeout: float = 180) -> None:
        """Every container's readiness probe, from the node as the kubelet does: httpGet or
        tcpSocket on the declared (named) port; an exec probe is replaced by a TCP check of the
        first port."""
        deadline = time.monotonic() + timeout
        for container in pod.spec["containers"]:
            self._wait_container_ready(pod, container, max(1.0, deadline - time.monotonic()))

    def _wait_container_ready(self, pod: Pod, container: dict, timeout: float) -> None:
        probe = container.get("readinessProbe") or {}
        ports = pod.declared_ports()

        def port_of(value) -> int:
            return ports[value] if isinstance(value, str) else int(value)

        deadline = time.monotonic() + timeout
        if "httpGet" in probe:
            url = f"http://{pod.ip}:{port_of(probe['httpGet']['port'])}{probe['httpGet'].get('path', '/')}"
            last = None
            while time.monotonic() < deadline:
                self._check_alive(pod)
                try:
                    r = httpx.get(url, timeout=2)
                    if 200 <= r.status_code < 400:
                        return
                    last = f"{r.status_code} {r.text[:300]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.3)
            raise TimeoutError(f"{pod.name}: {url} not ready after {timeout}s ({last})")
        port = port_of(probe["tcpSocket"]["port"]) if "tcpSocket" in probe else next(iter(ports.values()))
        self.wait_tcp(pod.ip, port, timeout, pod)

    # ---- connections and NetworkPolicies ------------------------------------------------------
    def record_connections(self) -> None:
        """TCP connections seen from each node, as (client, server pod, server port): established
        ones and those closed in the last minute (TIME-WAIT stays on the side that closed first,
        so each connection is read from whichever end still holds it)."""
        by_ip = {p.ip: p.name for p in self.pods}
        for pod in self.pods:
            def ss(*args: str, netns: str = pod.netns) -> list[list[str]]:
                out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Htn", *args],
                                     capture_output=True, text=True, timeout=10).stdout
                return [line.split() for line in out.splitlines() if line.strip()]

            listening = {int(row[-2].rsplit(":", 1)[1]) for row in ss("state", "listening")}
            for row in ss("state", "connected"):
                (lip, lport), (pip, pport) = (x.rsplit(":", 1) for x in row[-2:])
                if lip != pod.ip or pip == pod.ip:
                    continue
                peer = by_ip.get(pip, "host" if pip == self.host_ip else pip)
                if int(lport) in listening:
                    self.connections.add((peer, pod.name, int(lport)))
                elif peer in by_ip.values():
                    self.connections.add((pod.name, peer, int(pport)))

    def policy_violations(self) -> list[str]:
        """Every recorded connection a NetworkPolicy-enforcing cluster would have refused."""
        pods = {p.name: p for p in self.pods}
        problems = []
        for client, server, port in sorted(self.connections):
            if client == "host":
                continue  # the kubelet's probes and the test's own requests: no pod's traffic
            target = pods[server]
            applying = [p for p in self.policies if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
                        and selects(p["spec"]["podSelector"], target.labels)]
            if not applying:
                continue
            if not any(self._admits(rule, pods.get(client), target, port)
                       for p in applying for rule in p["spec"].get("ingress", [])):
                problems.append(f"{client} -> {server}:{port} is refused by {[p['metadata']['name'] for p in applying]}")
        return problems

    def _admits(self, rule: dict, client: Pod | None, target: Pod, port: int) -> bool:
        if rule.get("ports"):
            named = target.declared_ports()
            allowed = {named.get(p["port"], p["port"]) if isinstance(p["port"], str) else p["port"] for p in rule["ports"]}
            if port not in allowed:
                return False
        peers = rule.get("from")
        if not peers:
            return True
        for peer in peers:
            if "ipBlock" in peer:
                continue  # the rehearsal's addresses are in no real block
            ns_ok = "namespaceSelector" not in peer or selects(peer["namespaceSelector"],
                                                               {"kubernetes.io/metadata.name": NAMESPACE})
            if client is None:
                continue  # the host (kubelet, an outside client) is no pod
            pod_ok = "podSelector" not in peer or selects(peer["podSelector"], client.labels)
            if "namespaceSelector" in peer and "podSelector" not in peer:
                pod_ok = True
            if ns_ok and pod_ok:
                return True
        return False

    # ---- lifecycle ----------------------------------------------------------------------------
    def up(self, groups: list[list[str]]) -> Rehearsal:
        """Start the workloads group after group; a group's pods start together (init containers
        first, as the kubelet does) and must all pass their readiness probe before the next group."""
        from concurrent.futures import ThreadPoolExecutor

        self.root.mkdir(parents=True, exist_ok=True)
        self.plan([name for group in groups for name in group])
        self._make_bridge()
        for n, pod in enumerate(self.pods):
            self._make_node(pod, n)
        self._hosts_files()
        for group in groups:
            pods = [p for p in self.pods if p.app in group]
            with ThreadPoolExecutor(max_workers=len(pods)) as pool:
                list(pool.map(self.start_pod, pods))
                list(pool.map(self.wait_ready, pods))
        return self

    def down(self) -> None:
        for pod in self.pods:
            for proc in pod.processes:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, 15)
        deadline = time.monotonic() + 15
        for pod in self.pods:
            for proc in pod.processes:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, 9)
                    proc.wait(timeout=10)
        for pod in self.pods:
            subprocess.run(["ip", "netns", "del", pod.netns], capture_output=True, timeout=20)
            shutil.rmtree(Path("/etc/netns") / pod.netns, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=20)
        for path in reversed(self.created_dirs):
            with contextlib.suppress(OSError):
                path.unlink() if path.is_file() else path.rmdir()

    def __enter__(self) -> Rehearsal:
        return self

    def __exit__(self, *exc) -> None:
        self.down()
