"""A small supervisor: start child processes with their own log file, stop them all on exit.

Every child gets its own process group so that Ctrl-C, a failed start or the end of a test session
takes down grandchildren too (nginx workers, uvicorn reloaders): nothing is left running.

Nothing outlives the supervisor either: a lifeline process (`devstack.lifeline`) holds the other end
of a pipe and stops every group still running when the supervisor's process ends, even by `kill -9`.
`stop_on_signals` makes the first SIGINT/SIGTERM an orderly stop and any later one "the rest at
once", never an exception in the middle of stopping.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
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


class Lifeline:
    """The supervisor's end of the pipe to a `devstack.lifeline` process (see there)."""

    def __init__(self, log_path: Path):
        read_end, self._write_end = os.pipe()  # not inheritable: only the lifeline holds the read end
        with open(log_path, "ab", buffering=0) as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "devstack.lifeline"], stdin=read_end, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        os.close(read_end)

    def _send(self, line: str) -> None:
        try:
            os.write(self._write_end, line.encode())
        except OSError:  # the lifeline was killed: the supervisor still stops its children itself
            pass

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass


@dataclass
class Supervisor:
    log_dir: Path
    children: list[Child] = field(default_factory=list)
    # a stop is under way (stop_all) or was asked for (a signal): another signal means "the rest at once"
    stopping: bool = False
    signalled: bool = False
    hurry: bool = False
    grace: float = 10.0  # per child, between SIGTERM and SIGKILL

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._lifeline: Lifeline | None = None
        # > 0 while a child is started but not yet recorded: an interrupt there would lose it
        self._critical = 0
        self._interrupt_pending = False
        atexit.register(self.stop_all)

    def stop_on_signals(self, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        """The first of `signals` raises KeyboardInterrupt (the caller unwinds into `stop_all`);
        any later one, Ctrl-C twice or make/systemd's SIGTERM during the stop, kills what is left
        at once instead of interrupting the stop with a traceback. Main thread only."""
        for sig in signals:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if not (self.stopping or self.signalled):
            self.signalled = True
            if self._critical:
                self._interrupt_pending = True
                return
            raise KeyboardInterrupt
        self.stop_at_once()

    def stop_at_once(self) -> None:
        """SIGKILL every remaining group; a `stop_all` in progress then finds them gone."""
        self.hurry = True
        if not self.children:
            return
        try:  # os.write, not print: a handler interrupting a print must not print itself
            os.write(sys.stdout.fileno(), b"\nStopping the rest at once.\n")
        except (OSError, ValueError):
            pass
        for child in list(self.children):
            _signal_group(child.popen.pid, signal.SIGKILL)

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
        full_env = {**os.environ, **(env or {})}
        if self._lifeline is None:
            self._lifeline = Lifeline(self.log_dir / "lifeline.log")
        self._critical += 1
        try:
            with open(log_path, "ab", buffering=0) as log:
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
            child = Child(name, popen, log_path)
            self.children.append(child)
            self._lifeline.watch(popen.pid)
        finally:
            self._critical -= 1
        if self._interrupt_pending:
            self._interrupt_pending = False
            raise KeyboardInterrupt
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

    def stop(self, child: Child, grace: float | None = None) -> None:
        if child.alive():
            if not self.hurry:
                _signal_group(child.popen.pid, signal.SIGTERM)
                try:
                    child.popen.wait(self.grace if grace is None else grace)
                except subprocess.TimeoutExpired:
                    pass
            _signal_group(child.popen.pid, signal.SIGKILL)
            try:
                child.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        # the group may still hold grandchildren after the leader exited
        _signal_group(child.popen.pid, signal.SIGKILL)
        self._forget(child)

    def kill(self, child: Child) -> None:
        """kill -9, for crash tests."""
        _signal_group(child.popen.pid, signal.SIGKILL)
        child.popen.wait(5)
        self._forget(child)

    def _forget(self, child: Child) -> None:
        if child in self.children:
            self.children.remove(child)
        if self._lifeline is not None:
            self._lifeline.forget(child.popen.pid)

    def stop_all(self) -> None:
        self.stopping = True
        # reverse order: services before the servers they depend on
        for child in reversed(list(self.children)):
            try:
                self.stop(child)
            except Exception as exc:  # one stubborn child must not leave the rest running
                print(f"devstack: could not stop {child.name}: {exc}")
                self._forget(child)
        if not self.children and self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None
        # the supervisor may be used again (tests restart children after stop_all); a signal
        # already received still makes the next one "at once" (see _on_signal)
        self.stopping = self.hurry = False

    def first_dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
