"""A small supervisor: start child processes with their own log file, stop them all on exit.

Every child gets its own process group so that Ctrl-C, a failed start or the end of a test session
takes down grandchildren too (nginx workers, uvicorn reloaders): nothing is left running.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StartupFailed(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Supervisor:
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop_all)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 30.0,
        preexec_fn: Callable[[], None] | None = None,
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab", buffering=0)
        full_env = {**os.environ, **(env or {})}
        popen = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        log.close()
        child = Child(name, popen, log_path)
        self.children.append(child)
        if ready is not None:
            self.wait_ready(child, ready, timeout)
        return child

    def wait_ready(self, child: Child, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive():
                raise StartupFailed(
                    f"{child.name} exited with code {child.popen.returncode} while starting.\n"
                    f"Last lines of {child.log_path}:\n{child.tail()}"
                )
            try:
                if ready():
                    return
            except Exception:  # readiness probes may fail in any way until the child is up
                pass
            time.sleep(0.1)
        raise StartupFailed(
            f"{child.name} did not become ready within {timeout:.0f}s.\n"
            f"Last lines of {child.log_path}:\n{child.tail()}"
        )

    def stop(self, child: Child, grace: float = 10.0) -> None:
        if child.alive():
            _signal_group(child.popen.pid, signal.SIGTERM)
            try:
                child.popen.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(child.popen.pid, signal.SIGKILL)
                try:
                    child.popen.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        # the group may still hold grandchildren after the leader exited
        _signal_group(child.popen.pid, signal.SIGKILL)
        if child in self.children:
            self.children.remove(child)

    def kill(self, child: Child) -> None:
        """kill -9, for crash tests."""
        _signal_group(child.popen.pid, signal.SIGKILL)
        child.popen.wait(5)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        # reverse order: services before the servers they depend on
        for child in reversed(list(self.children)):
            try:
                self.stop(child)
            except Exception as exc:  # one stubborn child must not leave the rest running
                print(f"devstack: could not stop {child.name}: {exc}")
                if child in self.children:
                    self.children.remove(child)

    def first_dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
