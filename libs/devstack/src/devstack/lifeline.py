"""`python -m devstack.lifeline`: stops what a supervisor started once the supervisor is gone.

The supervisor keeps the write end of a pipe whose read end is this process's stdin, and writes
`+<pgid>` when it starts a child (every child leads its own process group) and `-<pgid>` when it
has stopped it. The kernel closes the pipe when the supervisor exits, however it exits (`kill -9`
included), and this process then stops every group still listed: SIGTERM, a grace period, SIGKILL.

Why a separate process and not `PR_SET_PDEATHSIG`: the death signal reaches only the direct child
(nginx workers, PostgreSQL backends and ffmpeg are grandchildren), it is cleared by the setuid
PostgreSQL's start needs when run as root, and it fires when the *thread* that started the child
ends, not the process. This process runs in its own session, so a Ctrl-C or a signal to the
supervisor's process group does not reach it.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_SECONDS = 5.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone we may not signal: nothing more to do
        return False
    return True


def _signal(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_groups(pgids: set[int], grace: float = GRACE_SECONDS) -> None:
    for pgid in pgids:
        _signal(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(p) for p in pgids):
        time.sleep(0.1)
    for pgid in pgids:
        _signal(pgid, signal.SIGKILL)


def main() -> int:
    # in its own session already; ignore stray interrupts so only the pipe's end decides
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        text = line.strip().decode("ascii", "replace")
        if len(text) < 2 or not text[1:].isdigit():
            continue
        pgid = int(text[1:])
        if text[0] == "+":
            groups.add(pgid)
        elif text[0] == "-":
            groups.discard(pgid)
    if groups:
        stop_groups(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
