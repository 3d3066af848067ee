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

from devstack.ports import free_ports
from devstack.stack import StackConfig

pytestmark = pytest.mark.e2e


def _env(data_dir: Path, **overrides) -> dict:
    """Every port the stack claims moved to a free one, so the test runs beside a developer's
    `make run`. The names come from the stack's own list of claims: a port added there (a new
    service, another chat edge) is moved here without anyone remembering to."""
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    names = [env_var for _, _, env_var in StackConfig(data_dir=data_dir).port_claims()]
    for name, port in zip(names, free_ports(len(names)), strict=True):
        env[name] = str(port)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def test_env_moves_every_port_the_stack_claims(monkeypatch, tmp_path):
    defaults = {env_var: port for port, _, env_var in StackConfig(data_dir=tmp_path).port_claims()}
    for name, value in _env(tmp_path).items():
        monkeypatch.setenv(name, value)
    moved = {env_var: port for port, _, env_var in StackConfig.from_env().port_claims()}
    assert moved.keys() == defaults.keys()
    kept = {name: port for name, port in moved.items() if port == defaults[name]}
    assert kept == {}, f"ports left at their `make run` defaults: {kept}"


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,pgid,ppid"], capture_output=True, text=True).stdout.split("\n")[1:]
    rows = [tuple(map(int, line.split())) for line in out if line.strip()]
    found, frontier = set(), {pid}
    while frontier:
        nxt = {p for p, _g, pp in rows if pp in frontier and p not in found}
        found |= nxt
        frontier = nxt
    return sorted(found)


def _start_run() -> tuple[subprocess.Popen, dict, str]:
    """`python -m devstack run` on free ports, up to its "Press Ctrl-C" line."""
    data_dir = Path(tempfile.mkdtemp(prefix="sp-run-"))
    os.chmod(data_dir, 0o755)
    env = _env(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "devstack", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    # generous: on a shared, loaded machine the migrations alone have taken minutes
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    return proc, env, "".join(lines)


def _still_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":  # a zombie waiting for init to reap it is dead
            alive.append(pid)
    return alive


# a whole stack per test: on a loaded machine the start alone has taken four minutes
@pytest.mark.timeout(900)
def test_run_prints_urls_and_ctrl_c_stops_everything():
    proc, env, output = _start_run()
    assert "The platform is up." in output, output
    assert f"http://localhost:{env['GATEWAY_PORT']}/" in output
    assert f"rtmp://localhost:{env['RTMP_PORT']}/live" in output
    assert f"srt://localhost:{env['SRT_PORT']}?streamid=" in output
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


@pytest.mark.timeout(900)
def test_a_second_signal_while_stopping_stops_the_rest_at_once_without_a_traceback():
    """Ctrl-C, then make's or systemd's SIGTERM while the stop is under way (issue 14 item 18)."""
    proc, _env_, output = _start_run()
    try:
        assert "The platform is up." in output, output
        children = _children_of(proc.pid)
        assert len(children) >= 10  # servers, services, edges, nginx (+ workers), the lifeline

        proc.send_signal(signal.SIGINT)
        while (line := proc.stdout.readline()) and line != "Stopping...\n":
            assert line.strip() == "", line  # the rest of the banner
        proc.send_signal(signal.SIGTERM)  # the stop is under way: ~12 children, one by one
        rest = proc.communicate(timeout=120)[0]
    finally:
        proc.kill()
    assert "Traceback" not in rest, rest
    assert proc.returncode == 0, rest
    assert "Everything stopped." in rest
    deadline = time.monotonic() + 30
    while _still_alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _still_alive(children) == [], f"left running: {_still_alive(children)}"
