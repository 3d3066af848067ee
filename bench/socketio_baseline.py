"""The same chat load against a naive python-socketio server, for comparison with the edge.

    .venv/bin/python bench/socketio_baseline.py [--points 100x100,250x200,500x500,1000x1000] [--seconds 8]

The server (`--serve PORT`, started by this script in its own process) is what a socket.io chat
usually is: python-socketio's AsyncServer as an ASGI app under uvicorn (uvloop, WebSocket only),
`join` puts the socket in a room, and on `message {room, content}` it builds the chat message object and does
`await sio.emit("chat", {...}, room=room)`: the packet is encoded once, then one task and one
queue put per recipient (socket.io's per-recipient send), one WebSocket frame per message.
No JetStream, no persistence, no moderation: it does less than the edge's path.

Load: bench/_chatload.py with the same shape as bench/chat.py (V viewers as raw Engine.IO
WebSocket clients counting without JSON, S socket.io senders at R msg/s, T s, the same sample
checks). Writes bench/results/socketio.json, with the ratio edge/socketio per load point when
bench/results/chat.json exists.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine_info, progress, write_results


def make_app():
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], cors_allowed_origins="*")

    @sio.on("join")
    async def join(sid, room):
        await sio.enter_room(sid, room)
        await sio.emit("joined", room, to=sid)

    @sio.on("message")
    async def message(sid, data):
        room = data["room"]
        body = {"type": "chat:message", "message": {
            "id": str(uuid.uuid4()), "channelId": room, "streamId": None,
            "user": {"id": sid, "username": sid, "displayName": sid, "badges": []},
            "content": data.get("content", ""), "createdAt": datetime.now(UTC).isoformat(), "deletedAt": None}}
        await sio.emit("chat", body, room=room)

    return socketio.ASGIApp(sio)


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(make_app(), host="127.0.0.1", port=port, loop="uvloop", ws="websockets-sansio",
                log_level="warning", access_log=False, lifespan="off")


class Server:
    """One socket.io server process per load point (a point that overloads it leaves nothing
    behind for the next), watched: python-socketio runs every event in its own task and each emit
    makes one task per recipient, so an overload piles up tasks without bound; above `max_rss` the
    server is killed and the point marked."""

    def __init__(self, max_rss: int):
        from devstack.ports import free_port

        self.port = free_port()
        self.max_rss = max_rss
        self.peak_rss = 0
        self.killed_for_memory = False
        self._stop = threading.Event()
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)],
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        self._watch = threading.Thread(target=self._watchdog, daemon=True)

    def __enter__(self) -> Self:
        from devstack.ports import wait_for_port

        try:
            if not wait_for_port(self.port, 30):
                raise RuntimeError("the socket.io server did not start")
            self._watch.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _watchdog(self) -> None:
        from _chatload import rss_bytes

        while not self._stop.wait(0.1):
            try:
                rss = rss_bytes(self.process.pid)
            except (OSError, RuntimeError):
                return
            self.peak_rss = max(self.peak_rss, rss)
            if rss > self.max_rss:
                self.killed_for_memory = True
                self.process.kill()
                progress(f"  socket.io server killed: RSS {rss / 2**20:.0f} MiB over the {self.max_rss / 2**20:.0f} MiB guard")
                return

    def stop(self) -> None:
        self._stop.set()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def ratios(edge: dict | None, baseline: list[dict]) -> list[dict]:
    """Edge / socket.io at the same load point (V, R): delivered per second, p99, CPU per delivery."""
    if not edge:
        return []
    out = []
    by_point = {(p["viewers"], p["ratePerSecond"]): p for p in edge.get("points", [])}
    for b in baseline:
        e = by_point.get((b["viewers"], b["ratePerSecond"]))
        if e is None:
            continue

        def per_delivery(p: dict, key: str) -> float | None:
            cores = p["cpuCores"].get(key)
            return cores / p["deliveriesPerSecond"] if cores and p["deliveriesPerSecond"] else None

        e_cost, b_cost = per_delivery(e, "edge"), per_delivery(b, "server")
        out.append({
            "viewers": b["viewers"], "ratePerSecond": b["ratePerSecond"],
            "offeredDeliveriesPerSecond": b["offeredDeliveriesPerSecond"],
            "edgeDeliveriesPerSecond": e["deliveriesPerSecond"], "socketioDeliveriesPerSecond": b["deliveriesPerSecond"],
            "deliveriesRatio": round(e["deliveriesPerSecond"] / max(1, b["deliveriesPerSecond"]), 2),
            "edgeP99Ms": e["latencyMs"]["p99"], "socketioP99Ms": b["latencyMs"]["p99"],
            "edgeCores": e["cpuCores"].get("edge"), "socketioCores": b["cpuCores"].get("server"),
            # how many times less CPU the edge spends per delivery
            "cpuPerDeliveryRatio": round(b_cost / e_cost, 1) if e_cost and b_cost else None,
        })
    return out


def sustained(points: list[dict], p99_ms: float = 100.0) -> int | None:
    """The highest achieved deliveries/s among points with no loss, >= 95% of the offered load
    delivered within the sending time, and p99 under `p99_ms`."""
    ok = [p["deliveriesPerSecond"] for p in points
          if p["lossByCount"] == 0 and p["deliveriesPerSecond"] >= 0.95 * p["offeredDeliveriesPerSecond"]
          and p["latencyMs"]["p99"] is not None and p["latencyMs"]["p99"] < p99_ms]
    return max(ok) if ok else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--points", default="100x100,250x200,500x500,1000x1000")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--sample", type=int, default=10)
    parser.add_argument("--viewer-processes", type=int, default=2)
    parser.add_argument("--idle-connections", type=int, default=5000)
    parser.add_argument("--drain", type=float, default=20.0, help="seconds to wait for the backlog after sending")
    parser.add_argument("--max-server-rss-mib", type=int, default=3072,
                        help="kill the server (and mark the point) above this RSS")
    parser.add_argument("--output", default="socketio")
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0

    from _chatload import idle_memory, run_point
    from chat import parse_points

    machine = machine_info()
    results, memory = [], None
    for viewers, rate in parse_points(args.points):
        with Server(args.max_server_rss_mib * 2**20) as server:
            result = run_point(host="127.0.0.1", port=server.port, protocol="socketio",
                               room=f"room-{uuid.uuid4().hex[:8]}", viewers=viewers,
                               senders=min(args.senders, max(1, int(rate))), rate=rate, seconds=args.seconds,
                               sampled=min(args.sample, viewers), processes=args.viewer_processes,
                               sender_spec={"transport": "socketio", "host": "127.0.0.1", "port": server.port},
                               cpu_groups=lambda: {"server": [server.process.pid]}, drain=args.drain,
                               progress=progress)
            results.append({**result, "serverPeakRssBytes": server.peak_rss,
                            "serverKilledForMemory": server.killed_for_memory})
    if args.idle_connections > 0:
        with Server(args.max_server_rss_mib * 2**20) as server:
            memory = idle_memory(host="127.0.0.1", port=server.port, protocol="socketio", room="idle",
                                 server_pid=server.process.pid, count=args.idle_connections,
                                 processes=args.viewer_processes, progress=progress)
    edge_path = RESULTS_DIR / "chat.json"
    edge = json.loads(edge_path.read_text()) if edge_path.exists() else None
    compared = ratios(edge, results)
    path = write_results(args.output, machine, {
        "server": "python-socketio AsyncServer (ASGI) under uvicorn, uvloop, websocket transport, naive emit to the room",
        "generator": {"viewerProcesses": args.viewer_processes, "sampleViewersPerPoint": args.sample,
                      "senders": args.senders, "secondsPerPoint": args.seconds},
        "points": results,
        "idleMemory": memory,
        "maxSustainedDeliveriesPerSecond": {"socketio": sustained(results),
                                            "edge": sustained(edge["points"]) if edge else None},
        "edgeVsSocketio": compared,
        "command": "make bench-chat  (.venv/bin/python bench/socketio_baseline.py)",
    })
    for c in compared:
        progress(f"  {c['offeredDeliveriesPerSecond']:,}/s offered: edge {c['edgeDeliveriesPerSecond']:,}/s "
                 f"p99 {c['edgeP99Ms']} ms, socket.io {c['socketioDeliveriesPerSecond']:,}/s p99 {c['socketioP99Ms']} ms; "
                 f"x{c['deliveriesRatio']} deliveries, x{c['cpuPerDeliveryRatio']} less CPU per delivery")
    progress(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
