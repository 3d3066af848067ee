"""Shared by the benchmarks in bench/: the platform on free ports, machine facts, percentiles,
per-process CPU from /proc, and the results file.

Each benchmark is a script `bench/<name>.py` (files starting with `_` are helpers, not benchmarks);
`make bench` runs them all, `make bench-<name>` one. Results go to `bench/results/<name>.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import devstack.stack
from devstack.stack import REPO_ROOT, Stack, StackConfig

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _patient_ready_wait(wait):
    """devstack waits 60 s for each service's /readyz; on a machine shared by many busy jobs (load 10+
    on 2 cores) a service's start-up alone can take longer, and a benchmark should measure, not
    give up. BENCH_READY_TIMEOUT (seconds, default 240) sets the wait."""
    limit = float(os.environ.get("BENCH_READY_TIMEOUT", "240"))

    def patient(url: str, timeout: float = 30.0) -> None:
        wait(url, timeout=max(timeout, limit))

    return patient


devstack.stack.wait_http_ok = _patient_ready_wait(devstack.stack.wait_http_ok)


@contextlib.contextmanager
def platform_stack(extra_env: dict[str, str] | None = None,
                   configure: Callable[[StackConfig], None] | None = None, *,
                   durable: bool = False) -> Iterator[Stack]:
    """The whole platform as `make run` starts it, on free ports and a throwaway data folder;
    everything is stopped and deleted on the way out (also on Ctrl-C or an error). `configure`
    sees the config once its ports are chosen (e.g. to publish an address that names one).
    `durable`: PostgreSQL fsyncs and Valkey appends as under `make run` (the tests' stacks skip both)."""
    data_dir = Path(tempfile.mkdtemp(prefix="sp-bench-"))
    if os.geteuid() == 0:
        os.chmod(data_dir, 0o755)  # the dropped-privilege PostgreSQL user must traverse it
    config = StackConfig.ephemeral(data_dir)
    config.durable = durable
    config.extra_env.update(extra_env or {})
    if configure is not None:
        configure(config)
    started = time.monotonic()
    try:
        with Stack(config, log=progress) as stack:
            progress(f"stack up in {time.monotonic() - started:.1f}s")
            yield stack
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def summary(samples: list[float | None]) -> dict:
    """p50 and max of the samples that succeeded (None = the run never got there)."""
    ok = sorted(s for s in samples if s is not None)
    if not ok:
        return {"p50": None, "max": None, "min": None, "failures": len(samples)}
    return {"p50": round(statistics.median(ok), 3), "max": round(ok[-1], 3), "min": round(ok[0], 3),
            "failures": len(samples) - len(ok)}


def _first_line(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def machine_info() -> dict:
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem_gib = round(kib / 1024 / 1024, 1)
    from devstack.servers import nginx_binary

    commit = _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    return {
        "cpu": model,
        "logicalCpus": os.cpu_count(),
        "memoryGiB": mem_gib,
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "ffmpeg": _first_line(["ffmpeg", "-hide_banner", "-version"]),
        "nginx": _first_line([nginx_binary(), "-v"]),
        "loadAverageAtStart": [round(x, 2) for x in os.getloadavg()],
        "gitCommit": commit,
    }


def _os_name() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return None


# ---- CPU time from /proc ----------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a process, None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may contain spaces or parentheses: the fields start after the last ')'
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = st[0]
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sorted(tree)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    return {pid: st[1] for pid in pids if (st := _stat(pid)) is not None}


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of `root` and every descendant, those that ran and exited included: each live
    process's own time plus what its children that it reaped used (cutime + cstime). Short-lived
    children (PostgreSQL's autovacuum workers, a probe's ffmpeg) are then counted even when they
    come and go between two readings."""
    total = 0.0
    for pid in process_tree(root):
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        total += sum(int(f) for f in fields[11:15]) / CLOCK_TICKS
    return total


def machine_busy_seconds() -> float:
    """CPU seconds every core spent on anything but idle and iowait since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


def measure_cpu(groups: dict[str, list[int]], window: float) -> dict[str, float]:
    """CPU used by each group of processes over `window` seconds, in cores (1.0 = one core busy).
    A process that exits during the window counts only up to its last reading."""
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    started = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - started
    after = {name: cpu_seconds(pids) for name, pids in groups.items()}
    return {name: round(sum(after[name].get(pid, t) - t for pid, t in before[name].items()) / elapsed, 3)
            for name in groups}


def write_results(name: str, machine: dict, payload: dict) -> Path:
    """`machine` is machine_info() taken before the stack started (its load average means something)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = name.removesuffix(".json")  # `--output x.json` means x.json, not x.json.json
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"benchmark": name, "date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine, **payload}, indent=2) + "\n")
    tmp.replace(path)
    return path


class EdgeProbe:
    """The edge's own view of a load point from its /metrics: deliveries and frames written (their
    ratio is the coalescing), and `chat_fanout_latency_seconds` (JetStream timestamp -> socket
    write), which leaves the load generator's delays out."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.before: dict = {}

    def _scrape(self) -> dict:
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        values: dict = {}
        for family in text_string_to_metric_families(httpx.get(self.url, timeout=10).text):
            for sample in family.samples:
                if sample.name == "chat_fanout_latency_seconds_bucket":
                    values[("le", float(sample.labels["le"]))] = sample.value
                elif sample.name in ("chat_deliveries_total", "chat_frames_sent_total",
                                     "chat_slow_consumer_disconnects_total", "chat_fanout_latency_seconds_count"):
                    values[sample.name] = sample.value
        return values

    def start(self) -> None:
        self.before = self._scrape()

    def finish(self) -> dict:
        after = self._scrape()
        delta = {k: after.get(k, 0) - self.before.get(k, 0) for k in after}
        count = delta.get("chat_fanout_latency_seconds_count", 0)
        buckets = sorted((k[1], v) for k, v in delta.items() if isinstance(k, tuple))

        def bound(q: float) -> float | None:  # the bucket's upper bound the quantile falls in
            for le, n in buckets:
                if count and n >= q * count:
                    return None if le == float("inf") else round(le * 1000, 1)
            return None

        frames = delta.get("chat_frames_sent_total", 0)
        return {"deliveries": int(delta.get("chat_deliveries_total", 0)), "frames": int(frames),
                "eventsPerFrame": round(delta.get("chat_deliveries_total", 0) / frames, 2) if frames else None,
                "slowConsumerDisconnects": int(delta.get("chat_slow_consumer_disconnects_total", 0)),
                "fanoutLatencyMsAtMost": {"p50": bound(0.5), "p99": bound(0.99)}}
