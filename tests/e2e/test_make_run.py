"""`python -m devstack run` (what `make run` calls): prints where to go, stops everything on
Ctrl-C, and refuses a taken port with a sentence instead of a traceback."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from devstack.ports import free_port
from devstack.stack import SERVICES

pytestmark = pytest.mark.e2e


def _env(data_dir: Path, **overrides) -> dict:
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    for name in ("GATEWAY_PORT", "RTMP_PORT", "NATS_PORT", "NATS_MONITOR_PORT", "POSTGRES_PORT", "REDIS_PORT",
                 "INGEST_HLS_PORT", "INGEST_CONTROL_PORT", "S3_PORT"):
        env[name] = str(free_port())
    for svc in SERVICES:
        env[svc.port_env] = str(free_port())
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,pgid,ppid"], capture_output=True, text=True).stdout.split("\n")[1:]
    rows = [tuple(map(int, line.split())) for line in out if line.strip()]
    found, frontier = set(), {pid}
    while frontier:
        nxt = {p for p, _g, pp in rows if pp in frontier and p not in found}
        found |= nxt
        frontier = nxt
    return sorted(found)


def test_run_prints_urls_and_ctrl_c_stops_everything():
    data_dir = Path(tempfile.mkdtemp(prefix="sp-run-"))
    os.chmod(data_dir, 0o755)
    env = _env(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "devstack", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    output = "".join(lines)
    assert "The platform is up." in output, output
    assert f"http://localhost:{env['GATEWAY_PORT']}/" in output
    assert f"rtmp://localhost:{env['RTMP_PORT']}/live" in output
    assert f"ws://localhost:{env['GATEWAY_PORT']}/ws" in output

    r = httpx.get(f"http://127.0.0.1:{env['GATEWAY_PORT']}/api/auth/openapi.json", timeout=5)
    assert r.status_code == 200
    children = _children_of(proc.pid)
    assert len(children) >= 4  # nats, postgres, valkey, auth, nginx (+ their workers)

    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0
    assert "Everything stopped." in rest
    time.sleep(0.5)
    alive = []
    for pid in children:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    assert alive == [], f"left running: {alive}"


def test_taken_port_is_a_clear_message():
    data_dir = Path(tempfile.mkdtemp(prefix="sp-run-"))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "devstack", "run"], env=_env(data_dir, GATEWAY_PORT=port),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"Port {port} for the gateway (HTTP) is already in use. Set GATEWAY_PORT" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
