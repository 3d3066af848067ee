"""Whole-path chat benchmark: `chat:send` over a socket -> send pipeline -> JetStream -> edges ->
viewers' sockets, through the gateway and directly to one edge, beside two peer servers driven by
the same load generator in the same run.

    .venv/bin/python bench/chat_path.py [--viewers 100,1000,3000] [--ladder 2000,5000,10000,20000,40000,80000,160000]
                                        [--seconds 5] [--targets P-direct,P-gw,P-l4,A,B] [--full]
                                        [--harness ../shared/peers/chat] [--output chat_path]

Starts the whole platform (devstack, as `make run` does, on free 127.0.0.1 ports), registers sender
users (moderators of one benchmark channel) with the harness's `platform/prep.py`, and runs the
shared harness (`run.sh`, its Node.js load generator `loadgen.js --proto platform`) point by point:

- targets: `P-direct` (one chat edge), `P-gw` (the nginx gateway, `least_conn` over both edges),
  `P-l4` (an L4 address over both edges as kube-proxy publishes a Service: a kernel DNAT rule,
  nftables `numgen inc`, no process in the path; needs root and `nft`),
  `A` (socket.io on Node) and `B` (python-socketio on uvicorn), the last two started and stopped
  by `run.sh` itself;
- per V, R steps up the ladder of offered deliveries/s (R = D/V) until a point misses the SLO
  (p99 < 100 ms, loss < 0.1 % over the ACKED messages, no refused or unanswered send, every
  socket connected): the last point that met it is that target's maximum at V;
- CPU per message: every platform process (both edges, the chat API with its persister, nginx,
  NATS, Valkey, PostgreSQL, the other services and the RTMP ingest), from /proc over the send
  window, divided by the messages sent;
- fixed points: the seed's stress test (1000 msg/s into 1000 viewers through the gateway for
  10 s) and the light-load floor (V=200, R=20, through the gateway and directly);
- idle socket memory: RSS of one edge before and after 2000 sockets connect (no join).

Writes bench/results/chat_path.json. The harness lives outside the repository (its dependencies
install under /tmp through its install.sh, which this script runs when they are missing).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, EdgeProbe, machine_info, platform_stack, process_tree, progress, write_results

SLO = {"p99Ms": 100, "lossPct": 0.1, "refusedSends": 0}
TARGETS = {"seedGatewayV1000R1000": "p99 < 100 ms, 0 loss, 0 refused", "ratioVsSocketIoAtLeast": 5,
           "cpuMsPerMessageAtMost": 0.3, "floorP50MsAtMost": 10, "floorP99MsAtMost": 30,
           "idleSocketKiBBelow": 20}
PLATFORM_TARGETS = ("P-direct", "P-gw", "P-gw-tuned", "P-l4")
# P-gw-tuned: a second nginx over the same edges, the gateway's config with these changes for
# many WebSockets (worker_processes auto and tcp_nodelay on are in the gateway's config already)
TUNED_WS = {
    "events": "worker_connections 16384;\n    multi_accept on;",
    # the upgraded connection's read buffer (default one page): a coalesced frame in fewer reads/writes
    # (nginx refuses a 16k buffer_size with the default 8 x 4k proxy_buffers: busy buffers, which
    # default to twice it, must fit in them minus one)
    "location = /ws {": "location = /ws {\n            proxy_buffer_size 16k;\n            proxy_buffers 8 16k;"
                        "\n            proxy_busy_buffers_size 32k;",
}
PEERS = ("A", "B")
# the edge closes a socket above 10 frames/s, and a moderator may send 100 messages per 30 s:
# the harness's own rule for how many sender sockets (each its own user) a point needs
MAX_RATE_PER_SENDER = 8
MAX_SENDS_PER_SENDER = 85


def harness_dir(given: str | None) -> Path:
    candidates = [Path(given)] if given else [REPO_ROOT.parent / "shared" / "peers" / "chat",
                                               Path("/work/shared/peers/chat")]
    for path in candidates:
        if (path / "run.sh").exists() and (path / "loadgen" / "loadgen.js").exists():
            return path.resolve()
    sys.exit(f"chat_path: the shared chat harness is not at {', '.join(map(str, candidates))} "
             "(pass --harness DIR)")


def _last(pattern: str, text: str) -> re.Match | None:
    matches = list(re.finditer(pattern, text, re.MULTILINE))
    return matches[-1] if matches else None


def senders_for(rate: float, seconds: float, at_least: int) -> int:
    return max(at_least, math.ceil(rate / MAX_RATE_PER_SENDER), math.ceil(rate * seconds / MAX_SENDS_PER_SENDER))


class Bench:
    def __init__(self, args, harness: Path, stack, work: Path):
        self.args = args
        self.harness = harness
        self.stack = stack
        self.work = work
        self.tokens = work / "tokens.json"
        c = stack.config
        self.gateway_port = c.gateway_port
        self.edge_port = c.service_ports["chat-edge-1"]
        self.env = {**os.environ, "NODE_DIR": args.node_dir, "VENV": args.venv, "LOGDIR": str(work / "logs"),
                    "QUIET_WAIT": str(args.quiet_wait), "RETRIES": str(args.retries),
                    "OTHER_MAX_PCT": str(args.other_max_pct)}

    # ---- the platform's processes ------------------------------------------------------------
    def groups(self) -> dict[str, list[int]]:
        """Every platform process by role (each child with its descendants)."""
        roles = {"chat-edge-1": "edge1", "chat-edge-2": "edge2", "chat": "api", "nginx": "nginx", "nginx-tuned": "nginx2",
                 "nats": "nats", "valkey": "valkey", "postgres": "pg"}
        out: dict[str, list[int]] = {}
        for child in self.stack.sup.children:
            out.setdefault(roles.get(child.name, "rest"), []).extend(process_tree(child.popen.pid))
        return out

    def start_tuned_gateway(self) -> None:
        """A second gateway over the same edges with TUNED_WS applied (target P-gw-tuned)."""
        from devstack.ports import free_port
        from devstack.servers import Nginx

        conf = (self.stack.config.data_dir / "nginx" / "nginx.conf").read_text()
        prefix = self.stack.config.data_dir / "nginx-tuned"
        for sub in ("logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(prefix / sub, 0o777)
        self.tuned_port = free_port()
        old_prefix = str(self.stack.config.data_dir / "nginx")
        conf = conf.replace(f"listen 127.0.0.1:{self.gateway_port};", f"listen 127.0.0.1:{self.tuned_port};")
        conf = conf.replace(old_prefix + "/", str(prefix) + "/")
        conf = re.sub(r"events \{[^}]*\}", "events {\n    " + TUNED_WS["events"] + "\n}", conf, count=1)
        conf = conf.replace("location = /ws {", TUNED_WS["location = /ws {"], 1)
        path = prefix / "nginx.conf"
        path.write_text(conf)
        Nginx(path, prefix, self.tuned_port).start(self.stack.sup, "nginx-tuned")

    def start_l4_address(self, exits: contextlib.ExitStack) -> None:
        """An L4 address over both edges (target P-l4): what a Kubernetes Service of type
        LoadBalancer/NodePort gives the edges (kube-proxy's iptables/IPVS mode: a DNAT per new
        connection, round robin, then conntrack), here one nftables table on the output hook.
        Only connections to the new port are rewritten; the table goes when the run ends."""
        edge2 = self.stack.config.service_ports["chat-edge-2"]
        # a virtual address as a Service's cluster IP is (nothing listens there; 127/8 is all
        # loopback), on edge 1's port so the harness's "is anything listening" check passes
        self.l4_address, self.l4_port = "127.0.0.77", self.edge_port
        table = f"chatbench_l4_{os.getpid()}"
        rules = (f"table ip {table} {{\n chain out {{\n  type nat hook output priority -100; policy accept;\n"
                 f"  ip daddr {self.l4_address} tcp dport {self.l4_port} dnat to numgen inc mod 2 map "
                 f"{{ 0 : 127.0.0.1 . {self.edge_port}, 1 : 127.0.0.1 . {edge2} }}\n }}\n}}\n")
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, timeout=30)
        exits.callback(subprocess.run, ["nft", "delete", "table", "ip", table], check=False, timeout=30)
        progress(f"L4 address {self.l4_address}:{self.l4_port} -> edges :{self.edge_port}, :{edge2} (nftables DNAT)")

    def prepare(self) -> None:
        progress(f"registering {self.args.users} sender users (moderators of one channel) with prep.py")
        self._prep("create", "--api", f"http://localhost:{self.gateway_port}", "--users", str(self.args.users))

    def _prep(self, *argv: str) -> None:
        subprocess.run([sys.executable, str(self.harness / "platform" / "prep.py"), *argv, "--out", str(self.tokens)],
                       check=True, timeout=900)

    # ---- one point -----------------------------------------------------------------------------
    def point(self, target: str, viewers: int, rate: float, seconds: float) -> dict:
        csv_path = self.work / f"row-{time.monotonic_ns()}.csv"
        env = {**self.env, "RESULTS": str(csv_path)}
        extra: list[str] = []
        if target in PLATFORM_TARGETS:
            groups = self.groups()
            served = ["edge1"] if target == "P-direct" else ["edge1", "edge2"]
            port = {"P-direct": self.edge_port, "P-gw": self.gateway_port, "P-l4": getattr(self, "l4_port", None),
                    "P-gw-tuned": getattr(self, "tuned_port", None)}[target]
            host = self.l4_address if target == "P-l4" else "127.0.0.1"
            url = f"ws://{host}:{port}/ws"
            watch = ",".join(f"{name}={'+'.join(map(str, pids))}" for name, pids in groups.items()
                             if name not in served and pids)
            senders = senders_for(rate, seconds, self.args.senders)
            env.update(URL=url, PROTO="platform", SENDERS=str(senders),
                       SERVER_PID=",".join(str(p) for name in served for p in groups[name]))
            extra = ["--platform-tokens", str(self.tokens), "--watch-pids", watch]
            self._prep("refresh")
        else:
            env["SENDERS"] = str(self.args.senders)
        argv = [str(self.harness / "run.sh"), target, str(viewers), f"{rate:g}", f"{seconds:g}", *extra]
        probes = [EdgeProbe(self.stack.config.service_ports[name]) for name in ("chat-edge-1", "chat-edge-2")] \
            if target in PLATFORM_TARGETS else []
        for probe in probes:
            probe.start()
        run = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=seconds + 600)
        out = run.stdout + run.stderr
        row = self._row(csv_path)
        if row is None:
            progress(f"  {target} V={viewers} R={rate:g}: no result (exit {run.returncode})\n{out[-1500:]}")
            return {"target": target, "viewers": viewers, "rate": rate, "ok": False, "error": out[-600:]}
        result = self._result(target, row, out)
        if probes and result.get("acked"):
            # socket writes of the fan-out per acked message: what the edges' CPU per message
            # scales with (bench/_write_cost.py gives the kernel's floor per write); counted over
            # the whole run, including a repeat of a disturbed one, so a ratio, not a rate
            frames = sum(probe.finish()["frames"] for probe in probes)
            sent_total = sum(int(n) for n in re.findall(r"^PLATFORM .*?acked=(\d+)", out, re.M)) or result["acked"]
            result["writesPerMessage"] = round(frames / sent_total, 1)
        progress(f"  {target:8} V={viewers:<5} R={rate:<7g} deliv/s={result['deliveriesPerSecond']:>7} "
                 f"p50={result['p50Ms']} p99={result['p99Ms']} loss={result['lossPct']}% "
                 f"refused={result.get('refused', 0)} cpu/msg={result.get('cpuMsPerMessage')} ms "
                 f"writes/msg={result.get('writesPerMessage')} "
                 f"-> {'ok' if result['ok'] else 'SAT'} {row['notes']}")
        return result

    @staticmethod
    def _row(path: Path) -> dict | None:
        try:
            with path.open() as f:
                rows = list(csv.DictReader(f))
        except OSError:
            return None
        return rows[-1] if rows else None

    def _result(self, target: str, row: dict, out: str) -> dict:
        def num(k):
            return float(row[k]) if row.get(k) not in (None, "", "NaN") else None
        result = {
            "target": target, "viewers": int(row["viewers"]), "senders": int(row["senders"]),
            "rate": num("rate_target"), "seconds": num("duration_s"), "sent": int(row["sent"]),
            "sendRate": num("send_rate"), "deliveriesPerSecond": int(float(row["deliveries_per_s"])),
            "lossPct": num("loss_pct"), "duplicates": int(row["dups"]), "p50Ms": num("lat_p50_ms"),
            "p99Ms": num("lat_p99_ms"), "maxMs": num("lat_max_ms"), "serverCpuPct": num("server_cpu_pct"),
            "serverRssMiB": num("server_rss_mb"), "loadgenCpuPct": num("loadgen_cpu_pct"),
            "otherCpuPct": num("other_cpu_pct"), "connFailed": int(row["conn_failed"]),
            "ok": row["status"] == "ok", "notes": row["notes"],
        }
        if target in PLATFORM_TARGETS:
            # run.sh repeats a run disturbed by other load: its output then holds every attempt, and
            # the CSV row is the last one's
            m = _last(r"^PLATFORM .*?acked=(\d+) refused=(\d+) unanswered=(\d+).*?ack_p50=([\d.]+) "
                      r"ack_p99=([\d.]+)", out)
            if m:
                result.update(acked=int(m[1]), refused=int(m[2]), unanswered=int(m[3]),
                              ackP50Ms=float(m[4]), ackP99Ms=float(m[5]))
            cpu_line = _last(r"^CPU (.*) server=([\d.]+)% loadgen", out)
            if cpu_line:
                parts = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)%", cpu_line[1])}
                parts["edge1" if target == "P-direct" else "edges"] = float(cpu_line[2])
                result["platformCpuPct"] = parts
                total = sum(parts.values())
                result["platformCpuPctTotal"] = round(total, 1)
                if result["sendRate"]:
                    result["cpuMsPerMessage"] = round(total / 100 / result["sendRate"] * 1000, 3)
        return result

    # ---- sweeps ---------------------------------------------------------------------------------
    def ladder(self, target: str, viewers: int) -> dict:
        """Step R up the ladder until a point misses the SLO; the last one that met it is the max."""
        points, best = [], None
        for deliveries in self.args.ladder:
            rate = round(deliveries / viewers, 1)
            p = self.point(target, viewers, rate, self.args.seconds)
            points.append(p)
            if not p["ok"]:
                break
            best = p
        return {"target": target, "viewers": viewers, "points": points,
                "max": None if best is None else {k: best.get(k) for k in (
                    "rate", "deliveriesPerSecond", "p50Ms", "p99Ms", "cpuMsPerMessage", "platformCpuPctTotal")},
                "firstFailure": None if not points or points[-1]["ok"] else {
                    k: points[-1].get(k) for k in ("rate", "deliveriesPerSecond", "p99Ms", "lossPct", "refused",
                                                   "unanswered", "notes")}}

    def idle_memory(self, count: int) -> dict:
        from _chatload import idle_memory

        channel = json.loads(self.tokens.read_text())["channelId"]
        edge_pid = self.groups()["edge1"][0]
        return idle_memory(host="127.0.0.1", port=self.edge_port, protocol="edge", room=channel,
                           server_pid=edge_pid, count=count, processes=1, progress=progress)


def enter_platform(exits: contextlib.ExitStack, attempts: int = 3, configure=None):
    """The platform, started again when a service misses devstack's readiness timeout (on a busy
    shared machine a start can take minutes)."""
    for attempt in range(1, attempts + 1):
        try:
            return exits.enter_context(platform_stack(configure=configure))
        except (TimeoutError, RuntimeError) as exc:
            if attempt == attempts:
                raise
            progress(f"the platform did not start ({str(exc)[:200]}); trying again")
    raise AssertionError("unreachable")


def ensure_harness_deps(harness: Path, node_dir: str, venv: str) -> None:
    if (Path(node_dir) / "node_modules" / "socket.io").exists() and (Path(venv) / "bin" / "python").exists():
        return
    progress(f"installing the harness's dependencies into {node_dir} and {venv} (its install.sh)")
    subprocess.run([str(harness / "install.sh")], env={**os.environ, "NODE_DIR": node_dir, "VENV": venv},
                   check=True, timeout=900)


def ratios(sweeps: list[dict]) -> dict:
    """Per V: the platform's max deliveries/s over each peer's, same run."""
    best = {(s["target"], s["viewers"]): (s["max"] or {}).get("deliveriesPerSecond") or 0 for s in sweeps}
    out: dict[str, dict] = {}
    for (target, v), value in best.items():
        if target not in PLATFORM_TARGETS:
            continue
        for peer in PEERS:
            other = best.get((peer, v))
            if other is not None:
                out.setdefault(f"V={v}", {})[f"{target}/{peer}"] = round(value / other, 2) if other else None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--viewers", default="100,1000,3000", help="room sizes V (comma-separated)")
    p.add_argument("--ladder", default="2000,5000,10000,20000,40000,80000,160000",
                   help="offered deliveries/s to step through per V (R = D/V)")
    p.add_argument("--seconds", type=float, default=5.0, help="sending time per point")
    p.add_argument("--targets", default="P-direct,P-gw,P-l4,A,B",
                   help="P-direct, P-gw, P-gw-tuned (a second nginx with TUNED_WS), P-l4 (kernel DNAT over both edges), A, B")
    p.add_argument("--full", action="store_true",
                   help="the full sweep: 10 s points and a ladder in steps of about 1.4x up to 200k/s")
    p.add_argument("--no-fixed", action="store_true", help="skip the seed point, the floor and the memory")
    p.add_argument("--idle-connections", type=int, default=2000)
    p.add_argument("--senders", type=int, default=10, help="at least this many sender sockets")
    p.add_argument("--users", type=int, default=300, help="sender users to register (identities)")
    p.add_argument("--harness", default=None, help="the shared chat harness (default ../shared/peers/chat)")
    p.add_argument("--node-dir", default="/tmp/chatbench-node")
    p.add_argument("--venv", default="/tmp/chatbench-venv")
    p.add_argument("--quiet-wait", type=int, default=5, help="run.sh: seconds to wait for a quiet machine")
    p.add_argument("--retries", type=int, default=1, help="run.sh: repeats of a run disturbed by other load")
    p.add_argument("--other-max-pct", type=int, default=40)
    p.add_argument("--output", default="chat_path")
    args = p.parse_args()
    if args.full:
        args.seconds = max(args.seconds, 10.0)
        args.ladder = "2000,3500,5000,7000,10000,14000,20000,28000,40000,56000,80000,110000,160000,200000"
        args.users = max(args.users, 500)
    args.ladder = [int(x) for x in args.ladder.split(",")]
    viewer_counts = [int(x) for x in args.viewers.split(",")]
    targets = [t for t in args.targets.split(",") if t]
    if "P-l4" in targets and (os.geteuid() != 0 or not shutil.which("nft")):
        progress("P-l4 left out: it needs root and nft (Debian's nftables) for its DNAT rule")
        targets.remove("P-l4")

    harness = harness_dir(args.harness)
    ensure_harness_deps(harness, args.node_dir, args.venv)
    machine = machine_info()
    started = time.monotonic()
    sweeps, fixed, memory = [], {}, None
    with tempfile.TemporaryDirectory(prefix="chat-path-") as tmp, contextlib.ExitStack() as exits:
        stack = enter_platform(exits)
        work = Path(tmp)
        bench = Bench(args, harness, stack, work)
        bench.prepare()
        if "P-gw-tuned" in targets:
            bench.start_tuned_gateway()
        if "P-l4" in targets:
            bench.start_l4_address(exits)
        if not args.no_fixed:
            # on a fresh edge: after the points its heap holds room for thousands of sockets
            memory = bench.idle_memory(args.idle_connections)
            progress("fixed points: the seed's stress test and the light-load floor")
            fixed["seedGateway"] = bench.point("P-gw", 1000, 1000, 10)
            if "P-l4" in targets:
                fixed["seedL4"] = bench.point("P-l4", 1000, 1000, 10)
            fixed["floorGateway"] = bench.point("P-gw", 200, 20, 10)
            fixed["floorDirect"] = bench.point("P-direct", 200, 20, 10)
        for v in viewer_counts:
            for target in targets:
                progress(f"sweep {target} V={v}")
                sweeps.append(bench.ladder(target, v))
    payload = {
        "parameters": {"viewers": viewer_counts, "ladderDeliveriesPerSecond": args.ladder, "seconds": args.seconds,
                       "targets": targets, "minSenders": args.senders, "harness": str(harness),
                       "contentBytes": 64, "slo": SLO},
        "targets": TARGETS,
        "fixedPoints": fixed,
        "sweeps": sweeps,
        "ratios": ratios(sweeps),
        "idleMemory": memory,
        "wallSeconds": round(time.monotonic() - started),
    }
    path = write_results(args.output, machine, payload)
    progress(f"wrote {path}")
    for s in sweeps:
        m = s["max"] or {}
        progress(f"  {s['target']:8} V={s['viewers']:<5} max {m.get('deliveriesPerSecond')} deliveries/s "
                 f"(R={m.get('rate')}) p50={m.get('p50Ms')} p99={m.get('p99Ms')} cpu/msg={m.get('cpuMsPerMessage')} ms")
    progress(f"  ratios: {payload['ratios']}")


if __name__ == "__main__":
    main()
