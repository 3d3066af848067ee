"""The supervisor leaves nothing running: children, grandchildren, even ones ignoring SIGTERM."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from devstack.processes import StartupFailed, Supervisor


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed grandchild may linger as a zombie until its new parent reaps it: that is dead too
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written")


def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def sup(tmp_path):
    supervisor = Supervisor(tmp_path / "logs")
    yield supervisor
    supervisor.stop_all()


def test_stop_all_leaves_no_child_or_grandchild(sup, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    # the shell starts `sleep 60` as a grandchild and waits for it
    child = sup.start("tree", ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"])
    grandchild = int(wait_for_file(pidfile))
    assert alive(child.popen.pid) and alive(grandchild)

    sup.stop_all()

    assert not alive(child.popen.pid)
    assert wait_dead(grandchild), "the grandchild survived stop_all"
    assert sup.children == []


def test_stop_kills_a_grandchild_that_ignores_sigterm(sup, tmp_path):
    pidfile = tmp_path / "stubborn.pid"
    child = sup.start("stubborn", ["sh", "-c",
                                   f"sh -c 'trap \"\" TERM; exec sleep 60' & echo $! > {pidfile}; wait"])
    stubborn = int(wait_for_file(pidfile))
    time.sleep(0.1)  # let the inner shell install its trap before exec'ing sleep

    started = time.monotonic()
    sup.stop_all()
    assert time.monotonic() - started < 5, "the leader obeys SIGTERM: no need to wait for the grace period"

    assert not alive(child.popen.pid)
    assert wait_dead(stubborn), "a grandchild ignoring SIGTERM survived stop_all"


def test_kill_is_immediate(sup, tmp_path):
    child = sup.start("victim", ["sh", "-c", "trap '' TERM; sleep 60"])
    time.sleep(0.1)
    sup.kill(child)
    assert child.popen.returncode == -9
    assert not alive(child.popen.pid)


def test_a_child_that_dies_while_starting_is_a_sentence_with_its_log(sup):
    with pytest.raises(StartupFailed) as info:
        sup.start("broken", ["sh", "-c", "echo 'FATAL: config missing'; exit 3"], ready=lambda: False, timeout=10)
    message = str(info.value)
    assert "broken exited with code 3" in message
    assert "FATAL: config missing" in message


def test_a_child_that_never_gets_ready_times_out(sup):
    with pytest.raises(StartupFailed, match="did not become ready"):
        sup.start("slow", ["sleep", "30"], ready=lambda: False, timeout=0.5)
    sup.stop_all()
    assert sup.children == []


# ---- signals and a killed supervisor (issue 14 item 18) ------------------------------------------

DRIVER = r'''
"""A supervisor in its own process, as `python -m devstack run` runs one."""
import sys, tempfile, time
from pathlib import Path

from devstack.processes import Supervisor

root, servers, stubborn = Path(sys.argv[1]), sys.argv[2] == "servers", int(sys.argv[3])
sup = Supervisor(root / "logs")
sup.grace = 600  # a child ignoring SIGTERM holds an orderly stop for 10 minutes
sup.stop_on_signals()
try:
    if servers:  # step 1 of the stack: the same classes, the same supervisor
        from devstack.ports import free_ports
        from devstack.servers import NatsServer, Postgres, Valkey

        nats_port, monitor, pg_port, valkey_port = free_ports(4)
        NatsServer(nats_port, monitor, root / "nats").start(sup)
        Postgres(pg_port, root / "postgres", durable=False).start(sup)
        Valkey(valkey_port, root / "valkey", durable=False).start(sup)
    for i in range(stubborn):
        # a tree (a shell and its sleeping grandchild) that ignores SIGTERM
        sup.start(f"stubborn-{i}", ["sh", "-c", "trap '' TERM; sleep 600 & wait"])
    print("up", flush=True)
    while True:
        time.sleep(1)
except KeyboardInterrupt:
    print("Stopping...", flush=True)
finally:
    sup.stop_all()
    print("Everything stopped.", flush=True)
'''


def descendants(pid: int) -> list[int]:
    rows = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            rows.append((int(entry.name), ppid))
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in rows if pp in frontier and p not in found}
        found |= frontier
    return sorted(found)


def wait_until_dead(pids: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


@pytest.fixture
def driver(tmp_path):
    """Starts the driver; afterwards kills whatever a failing test left behind."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    started: list[subprocess.Popen] = []
    seen: set[int] = set()

    def start(*, servers: bool, stubborn: int) -> tuple[subprocess.Popen, list[int]]:
        root = tmp_path / "root"
        root.mkdir()
        if os.geteuid() == 0:
            os.chmod(tmp_path, 0o755)  # the dropped-privilege PostgreSQL user must traverse it
            os.chmod(root, 0o755)
        proc = subprocess.Popen([sys.executable, str(script), str(root), "servers" if servers else "-",
                                 str(stubborn)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        line = proc.stdout.readline()
        assert line == "up\n", line + proc.stdout.read()
        time.sleep(0.2)  # the shells install their trap and start their sleep
        tree = descendants(proc.pid)
        seen.update(tree)
        return proc, tree

    yield start
    for proc in started:
        proc.kill()
        proc.wait()
    for pid in seen:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_a_second_signal_stops_the_rest_at_once_without_a_traceback(driver):
    import signal

    proc, tree = driver(servers=False, stubborn=3)
    assert len(tree) >= 6  # three shells, three sleeps (and the lifeline)

    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline() == "Stopping...\n"
    # the first child ignores SIGTERM for its 600 s of grace: the stop hangs there until...
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]

    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "Stopping the rest at once." in output
    assert output.endswith("Everything stopped.\n")
    assert wait_until_dead(tree) == [], "left running after the stop"


def test_nothing_outlives_a_supervisor_killed_while_running(driver):
    import signal

    proc, tree = driver(servers=False, stubborn=2)

    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert wait_until_dead(tree) == [], "left running after kill -9 of the supervisor"


def test_servers_do_not_outlive_a_supervisor_killed_while_it_stops(driver):
    """What once left NATS, PostgreSQL and Valkey running: SIGTERM, then SIGKILL mid-stop."""
    import signal

    proc, tree = driver(servers=True, stubborn=1)
    names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in tree if alive(pid)}
    assert {"nats-server", "postgres", "valkey-server"} <= names, names

    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline() == "Stopping...\n"
    # stop_all stops in reverse order: it now waits on the stubborn tree, the servers still run
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert wait_until_dead(tree) == [], "left running after SIGTERM then kill -9 of the supervisor"
