"""The platform idling: what `make run` costs with nobody streaming, watching or chatting.

    .venv/bin/python bench/idle.py [--settle 20] [--seconds 30] [--profile] [--profile-top 4]
                                   [--profile-seconds 20] [--output idle]

Starts the whole platform as `make run` does (devstack: NATS, PostgreSQL and Valkey durable as
there, SeaweedFS, every service, both chat edges, the RTMP ingest and the nginx gateway; on free
127.0.0.1 ports, in a throwaway data folder), sends it nothing, waits `--settle` seconds (start-up
work: migrations' autovacuum, JetStream's stream creation, first passes), then reads every
process's CPU time from /proc over `--seconds`: per supervised process with its descendants
(PostgreSQL's backends, nginx's workers), children that ran and exited within the window included.
Writes bench/results/<output>.json: % of one core per process and the total, the machine's own
busy CPU over the same window (everything, the platform included: a noisy neighbour shows there),
the load average before and after.

`--profile` then (after the window, so py-spy's own cost is not in it) samples the `--profile-top`
busiest Python processes with py-spy (`/tmp/spy/bin/py-spy` or on PATH; skipped with a message if
neither) for `--profile-seconds` each, all at once, non-blocking, and adds each one's busiest leaf
frames and the platform's own functions (services/, libs/) they were under.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    _cmdline,
    machine_busy_seconds,
    machine_info,
    platform_stack,
    process_tree,
    progress,
    tree_cpu_seconds,
    write_results,
)

PY_SPY_CANDIDATES = ("/tmp/spy/bin/py-spy",)


def supervised(stack) -> dict[str, int]:
    """Every process the stack started, by its devstack name -> pid (the root of its tree)."""
    return {child.name: child.popen.pid for child in stack.sup.children if child.popen.poll() is None}


def measure(roots: dict[str, int], seconds: float) -> tuple[dict[str, float], float, float]:
    """(% of one core per process tree, the sum, the machine's busy % of one core) over `seconds`."""
    before = {name: tree_cpu_seconds(pid) for name, pid in roots.items()}
    busy_before = machine_busy_seconds()
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    after = {name: tree_cpu_seconds(pid) for name, pid in roots.items()}
    busy = (machine_busy_seconds() - busy_before) / elapsed * 100
    per = {name: round((after[name] - before[name]) / elapsed * 100, 2) for name in roots}
    return per, round(sum(per.values()), 2), round(busy, 1)


class Traffic:
    """What the idle platform still asks of its servers over the window: PostgreSQL transactions
    per database (pg_stat_database, committed and rolled back) and messages through NATS (its
    monitoring /varz: pull requests, their empty answers, publishes), per second."""

    def __init__(self, stack):
        self.dsn = stack.postgres.dsn()
        self.varz = f"http://127.0.0.1:{stack.config.nats_monitor_port}/varz"
        self.before: tuple[dict, dict] = ({}, {})
        self.started = 0.0

    def _read(self) -> tuple[dict, dict]:
        import httpx
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT datname, xact_commit + xact_rollback FROM pg_stat_database "
                                "WHERE datname IS NOT NULL AND datname NOT LIKE 'template%'").fetchall()
        varz = httpx.get(self.varz, timeout=10).json()
        return dict(rows), {"in": varz["in_msgs"], "out": varz["out_msgs"]}

    def start(self) -> None:
        self.before, self.started = self._read(), time.monotonic()

    def finish(self) -> dict:
        # pg_stat_database is updated by each backend at most every 1 s (PGSTAT_MIN_INTERVAL) and
        # read from a snapshot: close enough over a window of tens of seconds
        after, elapsed = self._read(), time.monotonic() - self.started
        pg = {db: round((n - self.before[0].get(db, 0)) / elapsed, 2) for db, n in after[0].items()}
        nats = {k: round((v - self.before[1][k]) / elapsed, 2) for k, v in after[1].items()}
        return {"postgresTransactionsPerSecond": dict(sorted(pg.items(), key=lambda kv: -kv[1])),
                "postgresTransactionsPerSecondTotal": round(sum(pg.values()), 2),
                "natsMessagesPerSecond": nats}


def py_spy() -> str | None:
    for candidate in PY_SPY_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("py-spy")


# py-spy names a frame `function (package/module.py:line)`: the platform's own packages
PLATFORM_PACKAGES = ("servicekit/", "contracts/", "auth_service/", "channels_service/", "streams_service/",
                     "chat_service/", "media_gateway/")


def _own_frame(frame: str) -> bool:
    return any(f"({package}" in frame for package in PLATFORM_PACKAGES)


def _waiting(frames: list[str]) -> bool:
    """A sample of a thread that waits (py-spy's non-blocking mode cannot always tell): the main
    thread in the event loop's select (the runner is its innermost Python frame), or a thread
    with no Python frame at all."""
    return not frames[-1] or frames[-1].startswith("Runner.run (asyncio/runners.py")


# frames between the event loop and the work that say nothing about which work it is
_GENERIC = ("Supervised.__call__ (servicekit/supervision", "every (servicekit/periodic")


def _task(frames: list[str]) -> str:
    """The coroutine a sample ran under: the first frame below the event loop's runner that is
    not the supervisor's or the periodic loop's (`-` when the loop itself was busy: callbacks,
    the NATS client's reader)."""
    for i, frame in enumerate(frames):
        if frame.startswith("Runner.run (asyncio/runners.py"):
            below = [f for f in frames[i + 1:] if not f.startswith(_GENERIC)]
            return below[0] if below else "-"
    return frames[0]


def summarize_raw(path: Path, top: int = 12) -> dict:
    """py-spy's raw (collapsed) output -> the busiest leaf frames and the platform's own frames."""
    leaves: Counter[str] = Counter()
    own: Counter[str] = Counter()
    tasks: Counter[str] = Counter()
    total = waiting = 0
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            if _waiting(frames):
                waiting += n
                continue
            total += n
            leaves[frames[-1]] += n
            tasks[_task(frames)] += n
            for frame in dict.fromkeys(f for f in frames if _own_frame(f)):
                own[frame] += n
    pct = (lambda n: round(n / total * 100, 1)) if total else (lambda n: 0.0)
    return {"samples": total, "loopWaitSamples": waiting,
            "tasks": [{"frame": f, "pct": pct(n)} for f, n in tasks.most_common(top)],
            "leaves": [{"frame": f, "pct": pct(n)} for f, n in leaves.most_common(top)],
            "platformFrames": [{"frame": f, "pct": pct(n)} for f, n in own.most_common(top)]}


def profile(roots: dict[str, int], per: dict[str, float], count: int, seconds: float, rate: int,
            keep: Path | None) -> dict:
    spy = py_spy()
    if spy is None:
        progress("--profile: py-spy is neither at /tmp/spy/bin/py-spy nor on PATH; skipped")
        return {"skipped": "py-spy not found"}
    pythons = [name for name in sorted(per, key=per.get, reverse=True)
               if "python" in os.path.basename(_cmdline(roots[name]).split(" ", 1)[0])][:count]
    progress(f"py-spy on {', '.join(pythons)} for {seconds:g} s ({rate} Hz, non-blocking)")
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="idle-spy-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        runs = {}
        for name in pythons:
            raw = folder / f"{name}.txt"
            argv = [spy, "record", "--pid", str(roots[name]), "--duration", str(int(seconds)), "--rate", str(rate),
                    "--format", "raw", "--output", str(raw), "--nonblocking"]
            runs[name] = (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), raw)
        for name, (proc, raw) in runs.items():
            try:
                _, err = proc.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                err = "py-spy did not finish"
            result = summarize_raw(raw)
            if proc.returncode:
                result["error"] = (err or "").strip()[-300:]
            # samples of a busy thread: at `rate` Hz, samples / rate / seconds ~ its share of a core
            result["busyPctOfSamples"] = round(result["samples"] / (rate * seconds) * 100, 2)
            if keep:
                result["raw"] = str(raw)
            out[name] = result
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settle", type=float, default=20.0, help="seconds between the stack's start and the window")
    p.add_argument("--seconds", type=float, default=30.0, help="the measuring window")
    p.add_argument("--profile", action="store_true", help="py-spy on the busiest Python processes afterwards")
    p.add_argument("--profile-top", type=int, default=4)
    p.add_argument("--profile-seconds", type=float, default=20.0)
    p.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--profile-dir", type=Path, default=None,
                   help="keep py-spy's raw (collapsed) stacks here (flamegraph.pl / speedscope read them)")
    p.add_argument("--output", default="idle")
    args = p.parse_args()

    machine = machine_info()
    started = time.monotonic()
    with platform_stack(durable=True) as stack:
        progress(f"settling for {args.settle:g} s")
        time.sleep(args.settle)
        roots = supervised(stack)
        load_before = [round(x, 2) for x in os.getloadavg()]
        progress(f"measuring {len(roots)} processes for {args.seconds:g} s")
        traffic = Traffic(stack)
        traffic.start()
        per, total, busy = measure(roots, args.seconds)
        asked = traffic.finish()
        load_after = [round(x, 2) for x in os.getloadavg()]
        processes = {name: {"pid": pid, "processes": len(process_tree(pid))} for name, pid in roots.items()}
        spy = (profile(roots, per, args.profile_top, args.profile_seconds, args.profile_rate, args.profile_dir)
               if args.profile else None)
    payload = {
        "parameters": {"settleSeconds": args.settle, "seconds": args.seconds, "durable": True,
                       "profile": args.profile},
        "cpuPctOfOneCore": dict(sorted(per.items(), key=lambda kv: -kv[1])),
        "totalPctOfOneCore": total,
        # everything the machine ran over the window (the platform included): much above the total,
        # something else was busy
        "machineBusyPctOfOneCore": busy,
        "loadAverage": {"beforeWindow": load_before, "afterWindow": load_after},
        **asked,
        "processes": processes,
        "profile": spy,
        "wallSeconds": round(time.monotonic() - started),
    }
    path = write_results(args.output, machine, payload)
    progress(f"wrote {path}")
    progress(f"  total {total:.2f} % of one core (machine busy {busy:.1f} %, load {load_before} -> {load_after})")
    for name, pct in payload["cpuPctOfOneCore"].items():
        progress(f"  {name:16} {pct:6.2f} %")
    progress(f"  PostgreSQL transactions/s: {asked['postgresTransactionsPerSecond']}")
    progress(f"  NATS messages/s: {asked['natsMessagesPerSecond']}")


if __name__ == "__main__":
    main()
