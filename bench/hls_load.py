"""HLS under load: N concurrent LL-HLS players of one live stream through the gateway's cache.

    .venv/bin/python bench/hls_load.py [--players 100,300,1000] [--seconds 20] [--warmup 8]
                                       [--processes 0] [--legacy-share 0.1] [--preload-hint] [--client lean]
                                       [--output hls_load]

Starts the whole platform (devstack, free ports, loopback only), registers a creator, goes live and
publishes a 720p30 test pattern with ffmpeg (as bench/golive.py does), takes the master playlist's
URL from the stream's `hlsUrl` in the API, and for each player count runs that many players in
Node.js processes (bench/_hlsload.mjs; hls.js's low-latency behaviour, bench/_hlsplayer.mjs):
blocking playlist reloads for the next part, the parts they announce, a buffer playing in real
time from PART-HOLD-BACK behind live, a stall whenever it would have emptied. Per step: stalls,
request latency per kind (a blocking reload also from the moment its part came to exist at the
origin), how far behind live the players sit, how many requests reached the origin per part (the
gateway's access log: `$upstream_cache_status` per URI; and the origin's own counter), and the CPU
of every platform process, the generator and the rest of the machine over the measured window.
Writes bench/results/hls_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urljoin

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    CLOCK_TICKS,
    machine_info,
    measure_cpu,
    platform_stack,
    process_tree,
    progress,
    write_results,
)
from golive import Creator, encoder_argv, start_encoder, stop

GENERATOR = Path(__file__).resolve().parent / "_hlsload.mjs"
PLAYERS_PER_PROCESS = 250  # one Node.js event loop keeps ~1500 requests/s with room to spare (measured: cpu in results)
TARGETS = {"stalls": 0, "originFetchesPerPartPerCacheNode": 1}
_PART = re.compile(r"/part-\d+\.\d+\.m4s$")
_SEGMENT = re.compile(r"/seg-\d+\.m4s$")


def percentiles(values: list[float], scale: float = 1.0) -> dict:
    """p50/p90/p99/max of `values` times `scale`."""
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 99
    return {"count": len(ordered), "p50": round(statistics.median(ordered) * scale, 4),
            "p90": round(q[89] * scale, 4), "p99": round(q[98] * scale, 4), "max": round(ordered[-1] * scale, 4)}


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def platform_groups(stack) -> dict[str, list[int]]:
    """Every platform process by what it is: each devstack child with its descendants, the media
    gateway's transcoders (ffmpeg) apart from its Python process, the ingest's nginx-rtmp."""
    out: dict[str, list[int]] = {}
    for child in stack.sup.children:
        pids = process_tree(child.popen.pid)
        if child.name == "media-gateway":
            out["transcoders"] = [p for p in pids if _comm(p) == "ffmpeg"]
            pids = [p for p in pids if p not in out["transcoders"]]
        out.setdefault({"nginx": "gateway-nginx", "nginx-before": "gateway-nginx-before"}.get(child.name, child.name),
                       []).extend(pids)
    return out


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every core; /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def access_log_since(path: Path, offset: int) -> list[dict]:
    """The gateway's access log lines for /hls/ written after `offset` bytes."""
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if record.get("path", "").startswith("/hls/"):
            records.append(record)
    return records


def origin_fetches(records: list[dict]) -> dict:
    """From the gateway's access log: per kind of resource, how many distinct URIs were asked for,
    how many requests, and how many reached the origin (an upstream was contacted: MISS, EXPIRED,
    BYPASS; a HIT, also one that waited for the cache lock, did not)."""
    kinds: dict[str, dict[str, Counter]] = defaultdict(lambda: {"requests": Counter(), "origin": Counter()})
    statuses: dict[str, Counter] = defaultdict(Counter)
    durations: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        path = r["path"]
        if _PART.search(path):
            kind, key = "part", path
        elif _SEGMENT.search(path):
            kind, key = "segment", path
        elif path.endswith(".m3u8") and r.get("hlsMsn"):
            kind, key = "blockingPlaylist", f"{path}?{r['hlsMsn']}.{r.get('hlsPart', '')}"
        elif path.endswith(".m3u8"):
            kind, key = "playlist", path
        else:
            kind, key = "other", path
        kinds[kind]["requests"][key] += 1
        statuses[kind][r.get("cache") or "-"] += 1
        with contextlib.suppress(TypeError, ValueError):
            durations[kind][r.get("cache") or "-"].append(float(r["durationSeconds"]))
        if r.get("upstream") not in (None, "", "-"):
            kinds[kind]["origin"][key] += 1
    out = {}
    for kind, c in kinds.items():
        per_uri = [c["origin"][k] for k in c["requests"]]
        out[kind] = {"uris": len(c["requests"]), "requests": sum(c["requests"].values()),
                     "originFetches": sum(per_uri),
                     "originFetchesPerUri": round(sum(per_uri) / len(per_uri), 3) if per_uri else None,
                     "maxOriginFetchesOfOneUri": max(per_uri, default=0),
                     "cacheStatus": dict(statuses[kind]),
                     # as nginx timed them (request read -> response written): the gateway's own share
                     "gatewaySecondsByCacheStatus": {k: percentiles(v) for k, v in durations[kind].items()}}
    return out


def origin_counter(text: str) -> dict[str, float]:
    """The origin's own count of what it answered (llhls_origin_fetches_total by kind)."""
    return {m[1]: float(m[2]) for m in re.finditer(r'^llhls_origin_fetches_total\{kind="([^"]+)"\} (\S+)$', text, re.MULTILINE)}


# what `--compare` takes out of the gateway's /hls/ location for its second gateway: the
# configuration before stale-while-updating (an expired playlist went to the origin for every viewer)
BEFORE = "proxy_cache_use_stale updating;"


def start_before_gateway(stack) -> tuple[int, Path]:
    """A second gateway over the same services, its /hls/ location as it was before (BEFORE taken
    out), with its own cache and log. -> (port, access log)"""
    from devstack.ports import free_port
    from devstack.servers import Nginx

    conf = (stack.config.data_dir / "nginx" / "nginx.conf").read_text()
    if BEFORE not in conf:
        raise RuntimeError(f"the gateway's configuration has no `{BEFORE}` to take out")
    prefix = stack.config.data_dir / "nginx-before"
    for sub in ("logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "tmp/hls_cache"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(prefix / sub, 0o777)
    port = free_port()
    conf = conf.replace(f"listen 127.0.0.1:{stack.config.gateway_port};", f"listen 127.0.0.1:{port};")
    conf = conf.replace(str(stack.config.data_dir / "nginx") + "/", str(prefix) + "/").replace(BEFORE, "")
    path = prefix / "nginx.conf"
    path.write_text(conf)
    Nginx(path, prefix, port).start(stack.sup, "nginx-before")
    return port, prefix / "logs" / "access.log"


async def wait_playable(api: httpx.AsyncClient, stream_id: str, timeout: float = 60) -> str:
    """The master playlist's URL as the API gives it (absolute), once the gateway serves it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stream = (await api.get(f"/api/streams/{stream_id}")).json()
        if stream.get("hlsUrl"):
            url = urljoin(str(api.base_url), stream["hlsUrl"])
            if (await api.get(url)).status_code == 200:
                return url
        await asyncio.sleep(0.2)
    raise RuntimeError("the stream never became playable")


def run_step(stack, args, master_url: str, origin_url: str, players: int, encoder_pid: int, log: Path) -> dict:
    processes = args.processes or max(1, math.ceil(players / PLAYERS_PER_PROCESS))
    total = args.warmup + args.seconds + 2
    offset = log.stat().st_size
    metrics_url = f"{origin_url}/metrics"
    before = origin_counter(httpx.get(metrics_url, timeout=10).text)
    argv_common = ["--master", master_url, "--seconds", str(total), "--measure-from", str(args.warmup),
                   "--ramp", str(args.ramp), "--origin", origin_url, "--legacy-share", str(args.legacy_share),
                   "--rendition", args.rendition, "--client", args.client,
                   *(["--preload-hint"] if args.preload_hint else [])]
    procs, outputs = [], []
    share = [players // processes + (1 if i < players % processes else 0) for i in range(processes)]
    first = 0
    for n in share:
        procs.append(subprocess.Popen(["node", str(GENERATOR), "--players", str(n), "--first-player", str(first),
                                       *argv_common], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        first += n
    try:
        time.sleep(args.warmup)
        groups = {**platform_groups(stack), "encoder": [encoder_pid], "loadgen": [p.pid for p in procs]}
        busy0, t0 = machine_busy(), time.monotonic()
        cores = measure_cpu(groups, args.seconds - 1)
        machine = (machine_busy() - busy0) / (time.monotonic() - t0)
        load = [round(x, 2) for x in os.getloadavg()]
        for p in procs:
            out, err = p.communicate(timeout=total + 60)
            result = next((line[7:] for line in out.splitlines() if line.startswith("RESULT ")), None)
            if result is None:
                raise RuntimeError(f"a load generator failed (exit {p.returncode}): {err[-2000:]}")
            outputs.append(json.loads(result))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    time.sleep(1)  # the last requests' log lines
    records = access_log_since(log, offset)
    after = origin_counter(httpx.get(metrics_url, timeout=10).text)
    return summarize(players, processes, outputs, records, {k: after.get(k, 0) - before.get(k, 0) for k in after},
                     cores, machine, load, args)


def summarize(players: int, processes: int, outputs: list[dict], records: list[dict], counter: dict,
              cores: dict, machine: float, load: list[float], args) -> dict:
    everyone = [p for o in outputs for p in o["players"]]
    playing = [p for p in everyone if p["startupMs"] is not None]
    samples: dict[str, list[float]] = defaultdict(list)
    errors: Counter = Counter()
    for o in outputs:
        for kind, values in o["samples"].items():
            samples[kind].extend(values)
        errors.update(o["errors"])
    gen_cpu = sum(o["cpu"]["userS"] + o["cpu"]["systemS"] for o in outputs)
    gen_window = max((o["cpu"]["windowS"] for o in outputs), default=1)
    requests = sum(len(v) for k, v in samples.items() if k not in ("blockingFromPart", "probe"))
    fetches = origin_fetches(records)
    parts = fetches.get("part", {})
    platform = {k: v for k, v in cores.items() if k not in ("encoder", "loadgen")}
    return {
        "players": players, "generatorProcesses": processes,
        "lowLatencyPlayers": sum(1 for p in everyone if not p["legacy"]),
        "legacyPlayers": sum(1 for p in everyone if p["legacy"]),
        "playersFailed": Counter(p["failed"] for p in everyone if p["failed"]),
        "playersPlaying": len(playing),
        "startupSeconds": percentiles([p["startupMs"] for p in playing], 0.001),
        "stalls": {
            "window": {"playersWithStall": sum(1 for p in playing if p["windowStalls"]),
                       "stalls": sum(p["windowStalls"] for p in playing),
                       "stallSeconds": round(sum(p["windowStallMs"] for p in playing) / 1000, 3)},
            "wholeRun": {"playersWithStall": sum(1 for p in playing if p["stalls"]),
                         "stalls": sum(p["stalls"] for p in playing),
                         "stallSeconds": round(sum(p["stallMs"] for p in playing) / 1000, 3)},
            "lowLatencyPlayersWithStallInWindow": sum(1 for p in playing if p["windowStalls"] and not p["legacy"]),
            "gapJumps": sum(p["gapJumps"] for p in playing), "liveJumps": sum(p["liveJumps"] for p in playing),
        },
        "latencySeconds": {kind: percentiles(values, 0.001) for kind, values in sorted(samples.items())},
        "errors": dict(errors),
        # blocking reloads answered with nothing new, after which a player waits half a target
        # duration (hls.js): many of them would mean the origin answers before the part exists
        "unadvancedReloads": sum(p.get("unadvancedReloads", 0) for p in everyone),
        "behindLiveSeconds": {
            "newestPart": percentiles([x for o in outputs for x in o["behindEdge"]], 0.001),
            "wallClock": percentiles([x for o in outputs for x in o["behindClock"]], 0.001)},
        "requestsPerSecond": round(requests / args.seconds, 1),
        # a player at the origin itself (no cache, no download time): its stalls are the origin's
        # lateness (a starved transcoder), not the delivery's
        "referencePlayersAtOrigin": [r for o in outputs for r in o.get("reference", {}).values()],
        "generatorEventLoopDelayMs": [o.get("eventLoopDelayMs") for o in outputs],
        "originFetches": {
            "gatewayAccessLog": fetches,
            "originCounter": counter,
            "perPart": parts.get("originFetchesPerUri"),
            "maxForOnePart": parts.get("maxOriginFetchesOfOneUri"),
            "perBlockingPlaylist": fetches.get("blockingPlaylist", {}).get("originFetchesPerUri"),
        },
        "cpuCores": {**cores, "platformTotal": round(sum(platform.values()), 3), "machine": round(machine, 3),
                     "other": round(machine - sum(cores.values()), 3)},
        "generatorCpu": {"cores": round(gen_cpu / gen_window, 3),
                         "msPerRequest": round(gen_cpu * 1000 / requests, 3) if requests else None},
        "loadAverage": load,
    }


async def prepare(stack) -> tuple[Creator, str, httpx.AsyncClient]:
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.config.gateway_port}", timeout=10)
    creator = await Creator(api).setup()
    stream_id = await creator.go_live()
    return creator, stream_id, api


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", default="100,300,1000", help="player counts, one step each")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds per step before measuring (start-up)")
    parser.add_argument("--ramp", type=float, default=3.0, help="seconds over which a step's players start")
    parser.add_argument("--processes", type=int, default=0,
                        help=f"generator processes (0: one per {PLAYERS_PER_PROCESS} players)")
    parser.add_argument("--legacy-share", type=float, default=0.1,
                        help="share of players without low-latency mode (whole segments; default 0.1)")
    parser.add_argument("--rendition", choices=["spread", "first"], default="spread",
                        help="spread: players round-robin over the renditions; first: all on the first")
    parser.add_argument("--preload-hint", action="store_true",
                        help="players also request the preload-hinted part at once (hls.js does not)")
    parser.add_argument("--client", choices=["lean", "node"], default="lean",
                        help="the generator's HTTP client: lean (keep-alive GETs on node:net, bench/_httpget.mjs) "
                             "or node (node:http, as before; 3-4x the CPU per request in bench/_httpget_bench.mjs)")
    parser.add_argument("--compare", action="store_true",
                        help="also run every step on a second gateway without stale-while-updating (before/after)")
    parser.add_argument("--ladder", default=None, help="INGEST_LADDER (default: the platform's)")
    parser.add_argument("--part-seconds", type=float, default=None,
                        help="LLHLS_PART_SECONDS: the LL-HLS part length (default: the platform's)")
    parser.add_argument("--output", default="hls_load", help="results file name under bench/results/")
    args = parser.parse_args(argv)
    steps = [int(x) for x in args.players.split(",") if x]

    from media_gateway.ingest.nginx_conf import DEFAULT_LADDER

    ladder = args.ladder or os.environ.get("INGEST_LADDER") or DEFAULT_LADDER
    os.environ["INGEST_LADDER"] = ladder
    machine = machine_info()
    results = []
    extra_env = {"LLHLS_PART_SECONDS": str(args.part_seconds)} if args.part_seconds else {}
    with platform_stack(extra_env) as stack:
        origin_url = f"http://127.0.0.1:{stack.config.service_ports['media-gateway']}"
        rtmp_base = f"rtmp://127.0.0.1:{stack.config.rtmp_port}/live"
        seconds = int(len(steps) * (args.warmup + args.seconds + 15) + 60)
        loop = asyncio.new_event_loop()
        creator, stream_id, api = loop.run_until_complete(prepare(stack))
        encoder = loop.run_until_complete(start_encoder(f"{rtmp_base}/{creator.key}", 1.0, seconds))
        try:
            master_url = loop.run_until_complete(wait_playable(api, stream_id))
            progress(f"playable at {master_url}; letting the stream settle")
            time.sleep(5)
            gateways = [("after", master_url, stack.config.data_dir / "nginx" / "logs" / "access.log")]
            if args.compare:
                port, before_log = start_before_gateway(stack)
                before_url = master_url.replace(f":{stack.config.gateway_port}/", f":{port}/", 1)
                gateways.insert(0, ("before", before_url, before_log))
            for players in steps:
                for label, url, log in gateways:
                    progress(f"{players} players on the gateway {label if args.compare else ''} ...")
                    step = {"gateway": label if args.compare else "as committed",
                            **run_step(stack, args, url, origin_url, players, encoder.pid, log)}
                    results.append(step)
                    s = step["stalls"]["window"]
                    lat = step["latencySeconds"]
                    progress(f"  {players} players: {step['playersPlaying']} playing, {s['playersWithStall']} with a stall "
                             f"({s['stallSeconds']} s stalled); blocking p50/p99 from part "
                             f"{lat.get('blockingFromPart', {}).get('p50')}/{lat.get('blockingFromPart', {}).get('p99')} s; "
                             f"part {lat.get('part', {}).get('p50')}/{lat.get('part', {}).get('p99')} s; origin fetches per part "
                             f"{step['originFetches']['perPart']}; {step['requestsPerSecond']} req/s; "
                             f"generator {step['generatorCpu']['cores']} cores; reference players at the origin "
                             f"stalled {sum(r['windowStalls'] for r in step['referencePlayersAtOrigin'])} times; "
                             f"load {step['loadAverage']}")
                    time.sleep(3)
            loop.run_until_complete(creator.end(stream_id))
        finally:
            loop.run_until_complete(stop(encoder))
            loop.run_until_complete(api.aclose())
            loop.close()
        transcoder_log = stack.config.data_dir / "logs" / "media-gateway.log"
        restarts = sum(1 for line in transcoder_log.read_text(errors="replace").splitlines()
                       if '"logger":"media_gateway.llhls' in line and '"level":"warning"' in line) \
            if transcoder_log.exists() else None
    payload = {"ladder": ladder, "partSeconds": args.part_seconds, "steps": steps, "seconds": args.seconds, "warmupSeconds": args.warmup,
               "rampSeconds": args.ramp, "legacyShare": args.legacy_share, "rendition": args.rendition,
               "preloadHint": args.preload_hint, "client": args.client, "targets": TARGETS, "cacheNodes": 1, "compare": args.compare,
               "beforeTakesOut": BEFORE if args.compare else None,
               "player": "hls.js 1.7 lowLatencyMode as in web/player.js (bench/_hlsplayer.mjs)",
               "encoder": {"argv": encoder_argv("rtmp://<ingest>/live/<key>", 1.0, 0)},
               "transcoderWarnings": restarts, "results": results}
    path = write_results(args.output, machine, payload)
    progress(f"wrote {path}")
    ok = all(r["stalls"]["window"]["playersWithStall"] == 0 and (r["originFetches"]["perPart"] or 0) <= 1
             for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
