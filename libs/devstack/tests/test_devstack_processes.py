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
