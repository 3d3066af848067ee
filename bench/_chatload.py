"""The chat load generator shared by bench/chat.py (the WebSocket edge) and
bench/socketio_baseline.py (a naive python-socketio server): V viewers, S senders, R msg/s, T s.

It runs in its own processes (multiprocessing, spawn), never in the server's:
- viewer processes hold the sockets (`_edgeclient.EdgeClient`, one asyncio.Protocol per
  socket, no task per socket). Every viewer counts `chat:message` events with `bytes.count` (no
  JSON; once joined, outside the sample, on the raw bytes without even parsing frames, so the
  generator costs less per delivery than the server). A sample of viewers also reads each message's content `b<send time ns> <number>` with one
  regex per frame: latency = receive time - send time (same machine, same clock), and the numbers
  give loss and duplicates by message id; the others are checked by counts only.
- one sender process sends at a fixed schedule (no catching up by bursts, no coordinated
  omission: a late send keeps its planned slot's successors on time) and stamps each message with
  the time it actually left.

The machine has two cores shared by the server and the generator; a generator that cannot keep up
shows up as latency of its own, so the viewer processes' CPU is reported next to the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import re
import socket
import statistics
import time
import uuid
from dataclasses import dataclass

from _edgeclient import EdgeClient

_MESSAGE = b'"type":"chat:message"'
_SIO_PING = b"\x81\x012"  # an unmasked one-byte text frame "2": Engine.IO's ping
_SAMPLE = re.compile(rb'"content":"b(\d{19}) (\d+)"')
CONNECT_CONCURRENCY = 64


def content(number: int) -> str:
    """A message's content: its send time (wall clock, ns) and its number in this run."""
    return f"b{time.time_ns()} {number}"


# ---- viewers -----------------------------------------------------------------------------------
class Viewer(EdgeClient):
    """A counting socket; `sampled` ones also record latency and message numbers.

    protocol "edge": the chat edge's protocol (API.md: `chat:join` -> `chat:history`).
    protocol "socketio": Engine.IO 4 / Socket.IO 5 over a WebSocket: answers the open packet with a
    namespace connect, pings with pongs, joins with an event `join` answered by `joined`."""

    def __init__(self, *, protocol: str, room: str, sampled: bool, request: bytes, lowat: int = 0):
        super().__init__(parse=False, latency=False, request=request)
        self.lowat = lowat
        self.protocol = protocol
        self.room = room
        self.sampled = sampled
        self.joined: asyncio.Future = asyncio.get_running_loop().create_future()
        self.sio_ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.numbers: list[int] = []
        self._counting = False
        self._tail = b""

    def data_received(self, data: bytes) -> None:
        # Once joined, a viewer outside the sample only counts: `chat:message` markers in the raw
        # bytes, no frame parsing. A marker cut by a read boundary is found in the 40 bytes around
        # it (it is 21 bytes long, so it cannot lie wholly in either 20-byte half).
        if self._counting:
            self.deliveries += data.count(_MESSAGE) + (self._tail + data[:20]).count(_MESSAGE)
            self._tail = data[-20:]
            if self.protocol == "socketio" and _SIO_PING in data:
                self.send_raw(b"3")
            return
        super().data_received(data)
        if not self.sampled and self.joined.done() and not self._buf:
            self._counting, self._tail = True, b""
            if self.lowat:
                # wake up only once this much arrived: fewer reads per delivery for a socket whose
                # arrival times are not measured (`settle` lowers it again before counting ends)
                self.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT,
                                                                   self.lowat)

    def settle(self) -> None:
        if self._counting and self.lowat and not self.transport.is_closing():
            self.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode != 1:
            return super()._frame(opcode, payload)
        self.frames += 1
        self.deliveries += payload.count(_MESSAGE)
        if self.sampled:
            now = time.time_ns()
            for m in _SAMPLE.finditer(payload):
                self.latencies.append((now - int(m.group(1))) / 1e9)
                self.numbers.append(int(m.group(2)))
        if not self.joined.done():
            self._control(payload)
        elif self.protocol == "socketio" and payload == b"2":
            self.send_raw(b"3")

    def _control(self, payload: bytes) -> None:
        if self.protocol == "edge":
            if b'"type":"chat:history"' in payload:
                self.joined.set_result(None)
            elif b'"type":"chat:error"' in payload:
                self.joined.set_exception(RuntimeError(payload.decode(errors="replace")[:200]))
            return
        if payload.startswith(b"0{"):  # Engine.IO open -> Socket.IO connect to "/"
            self.send_raw(b"40")
        elif payload.startswith(b"40"):
            if not self.sio_ready.done():
                self.sio_ready.set_result(None)
        elif payload == b"2":
            self.send_raw(b"3")
        elif payload.startswith(b'42["joined"'):
            self.joined.set_result(None)

    def join(self) -> None:
        if self.protocol == "edge":
            self.send({"type": "chat:join", "channelId": self.room})
        else:
            self.send_raw(b'42["join","' + self.room.encode() + b'"]')


def _request(host: str, port: int, path: str) -> bytes:
    import base64

    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def ws_path(protocol: str) -> str:
    return "/ws" if protocol == "edge" else "/socket.io/?EIO=4&transport=websocket"


async def open_viewer(host: str, port: int, protocol: str, room: str, sampled: bool,
                      timeout: float = 20.0, lowat: int = 0) -> Viewer:
    loop = asyncio.get_running_loop()
    request = _request(host, port, ws_path(protocol))
    _, viewer = await asyncio.wait_for(loop.create_connection(
        lambda: Viewer(protocol=protocol, room=room, sampled=sampled, request=request, lowat=lowat),
        host, port), timeout)
    await asyncio.wait_for(viewer.opened, timeout)
    if protocol == "socketio":
        await asyncio.wait_for(viewer.sio_ready, timeout)
    return viewer


async def _viewers_main(conn, spec: dict) -> None:
    host, port, protocol = spec["host"], spec["port"], spec["protocol"]
    viewers: list[Viewer] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int) -> Viewer:
        async with gate:
            return await open_viewer(host, port, protocol, spec["room"], i < spec["sampled"],
                                     lowat=spec.get("lowat", 0))

    loop = asyncio.get_running_loop()
    try:
        started = time.monotonic()
        viewers = list(await asyncio.gather(*(one(i) for i in range(spec["count"]))))
        conn.send(("connected", time.monotonic() - started))
        while True:
            # a thread waits for the parent: the pipe stays blocking, so a large report is sent whole
            command, arg = await loop.run_in_executor(None, conn.recv)
            if command == "join":
                # at most CONNECT_CONCURRENCY joins in flight per process: a join storm's transient
                # memory on the server would otherwise count as memory per connection
                started = time.monotonic()

                async def join_one(v: Viewer) -> None:
                    async with gate:
                        v.join()
                        await v.joined

                await asyncio.wait_for(asyncio.gather(*(join_one(v) for v in viewers)), arg)
                conn.send(("joined", time.monotonic() - started))
            elif command == "settle":
                for v in viewers:
                    v.settle()
                conn.send(("settled", None))
            elif command == "count":
                conn.send(("count", sum(v.deliveries for v in viewers)))
            elif command == "report":
                expected = arg
                counts = [v.deliveries for v in viewers]
                sample = [v for v in viewers if v.sampled]
                dups = sum(len(v.numbers) - len(set(v.numbers)) for v in sample)
                missing = sum(expected - len({n for n in v.numbers if 0 <= n < expected}) for v in sample)
                closed = sum(1 for v in viewers if v.closed.done())
                conn.send(("report", {
                    "deliveries": sum(counts), "viewers": len(counts),
                    "short": sum(1 for c in counts if c < expected),  # viewers that got fewer than sent
                    "over": sum(1 for c in counts if c > expected),
                    "missingByCount": sum(max(0, expected - c) for c in counts),
                    "sampleViewers": len(sample), "sampleDuplicates": dups, "sampleMissing": missing,
                    "latencies": [x for v in sample for x in v.latencies],
                    "closedByServer": closed,
                    "closeCodes": sorted({v.closed.result()[0] for v in viewers if v.closed.done()}),
                }))
            elif command == "close":
                break
    except Exception as exc:  # noqa: BLE001  the parent must hear why, not wait
        with contextlib.suppress(Exception):
            conn.send(("error", repr(exc)))
    finally:
        for v in viewers:
            v.abort()
        await asyncio.sleep(0.1)


def viewers_process(conn, spec: dict) -> None:
    import uvloop

    uvloop.run(_viewers_main(conn, spec))


# ---- senders -----------------------------------------------------------------------------------
async def _jetstream_sender(spec: dict, schedule) -> dict:
    """Publishes what the chat core publishes once it accepted a message (the `chat.message`
    envelope on `chat.message.<channelId>`, Nats-Msg-Id = message id), acks awaited asynchronously."""
    from datetime import UTC, datetime

    import nats
    from contracts.catalog import subject_for
    from contracts.envelope import make_event
    from contracts.events.chat import ChatMessage, ChatUser

    channel_id = spec["room"]
    subject = subject_for("chat.message", channelId=channel_id)
    templates = []
    for k in range(spec["senders"]):
        uid = str(uuid.uuid4())
        message = ChatMessage(id=str(uuid.UUID(int=0)), seq=None, channel_id=channel_id, stream_id=None,
                              user=ChatUser(id=uid, username=f"sender{k}", display_name=f"Sender {k}", badges=[]),
                              content="@CONTENT@", created_at=datetime.now(UTC), deleted_at=None)
        raw = make_event("chat.message", message, source="chat", id=str(uuid.UUID(int=0))).to_json_bytes()
        templates.append(raw.split(str(uuid.UUID(int=0)).encode()))
    nc = await nats.connect(spec["nats_url"], pending_size=64 * 1024 * 1024)
    js = nc.jetstream(publish_async_max_pending=20000)
    acked = failed = 0

    def done(fut) -> None:
        nonlocal acked, failed
        if fut.cancelled() or fut.exception() is not None:
            failed += 1
        else:
            acked += 1

    async def send(k: int, number: int) -> None:
        mid = str(uuid.uuid4())
        parts = templates[k]
        body = mid.encode().join(parts).replace(b"@CONTENT@", content(number).encode(), 1)
        fut = await js.publish_async(subject, body, headers={"Nats-Msg-Id": mid})
        fut.add_done_callback(done)

    spec["ready"]()
    result = await schedule(send)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(js.publish_async_completed(), 10)
    await nc.close()
    return {**result, "acked": acked, "failed": failed}


async def _socketio_sender(spec: dict, schedule) -> dict:
    """S Socket.IO clients, each emitting `message {room, content}`; the server does the rest."""
    clients = [await open_viewer(spec["host"], spec["port"], "socketio", spec["room"], False)
               for _ in range(spec["senders"])]

    spec["ready"]()

    head = b'42["message",{"room":"' + spec["room"].encode() + b'","content":"'

    async def send(k: int, number: int) -> None:
        clients[k].send_raw(head + content(number).encode() + b'"}]')

    result = await schedule(send)
    await asyncio.sleep(0.2)
    for c in clients:
        c.abort()
    return {**result, "acked": result["sent"], "failed": 0}


async def _sender_main(spec: dict) -> dict:
    rate, seconds, senders = spec["rate"], spec["seconds"], spec["senders"]
    total = round(rate * seconds)

    async def schedule(send) -> dict:
        """Message n leaves at start + n/rate from sender n mod S; a late one is sent at once and
        the next keeps its own slot."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        worst = 0.0
        for n in range(total):
            due = start + n / rate
            delay = due - loop.time()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            else:
                worst = max(worst, -delay)
            await send(n % senders, n)
        return {"sent": total, "elapsed": loop.time() - start, "worstLateness": worst}

    if spec["transport"] == "jetstream":
        return await _jetstream_sender(spec, schedule)
    return await _socketio_sender(spec, schedule)


def sender_process(conn, spec: dict) -> None:
    import uvloop

    # the parent starts its clocks once imports and connections are done
    spec["ready"] = lambda: conn.send(("ready", None))
    try:
        conn.send(("sent", uvloop.run(_sender_main(spec))))
    except Exception as exc:  # noqa: BLE001  the parent must hear why, not wait
        conn.send(("error", repr(exc)))


# ---- one load point ----------------------------------------------------------------------------
@dataclass
class Worker:
    process: multiprocessing.Process
    conn: object

    def ask(self, command: str, arg=None, timeout: float = 60.0):
        self.conn.send((command, arg))
        return self.wait(timeout)

    def wait(self, timeout: float):
        if not self.conn.poll(timeout):
            raise TimeoutError(f"load worker {self.process.pid} did not answer within {timeout:.0f}s")
        kind, value = self.conn.recv()
        if kind == "error":
            raise RuntimeError(f"load worker {self.process.pid} failed: {value}")
        return value

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("close", None))
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


_ctx = multiprocessing.get_context("spawn")


def start_viewers(host: str, port: int, protocol: str, room: str, count: int, sampled: int,
                  processes: int, lowat: int = 0) -> list[Worker]:
    """`count` sockets over `processes` processes, all connected when this returns."""
    workers = []
    per = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    left_sampled = sampled
    try:
        for n in per:
            if n == 0:
                continue
            take = min(left_sampled, max(1, sampled // processes), n)
            left_sampled -= take
            parent, child = _ctx.Pipe()
            spec = {"host": host, "port": port, "protocol": protocol, "room": room, "count": n, "sampled": take,
                    "lowat": lowat}
            p = _ctx.Process(target=viewers_process, args=(child, spec), daemon=True)
            p.start()
            workers.append(Worker(p, parent))
        for w in workers:
            w.wait(120)
        return workers
    except BaseException:
        for w in workers:
            w.stop()
        raise


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_point(*, host: str, port: int, protocol: str, room: str, viewers: int, senders: int, rate: float,
              seconds: float, sampled: int, processes: int, sender_spec: dict, cpu_groups, drain: float = 10.0,
              probe=None, lowat: int = 32768, quiet: tuple[float, float] = (0.5, 60.0), progress=print) -> dict:
    """One load point: connect and join V viewers, send R msg/s for T s, wait for the tail, report.
    `cpu_groups()` -> {name: [pids]} measured over the sending window (minus its first second);
    `probe` (optional): `.start()` before sending, `.finish()` -> dict after the tail (server-side view);
    `lowat`: SO_RCVLOWAT of the counting viewers; `quiet`: (cores, seconds), wait up to that long
    for the rest of the machine to use less than that many cores before starting."""
    from _common import measure_cpu

    busy_at_start = wait_for_quiet(*quiet, progress=progress)
    workers = start_viewers(host, port, protocol, room, viewers, sampled, processes, lowat)
    sender = None
    try:
        joined = max(w.ask("join", 60.0, timeout=90) for w in workers)
        if probe is not None:
            probe.start()
        parent, child = _ctx.Pipe()
        spec = {**sender_spec, "room": room, "senders": senders, "rate": rate, "seconds": seconds}
        proc = _ctx.Process(target=sender_process, args=(child, spec), daemon=True)
        proc.start()
        sender = Worker(proc, parent)
        sender.wait(60)
        groups = {**cpu_groups(), "viewers": [w.process.pid for w in workers], "sender": [proc.pid]}
        time.sleep(min(1.0, seconds / 4))
        busy_before, t0 = machine_busy_seconds(), time.monotonic()
        cpu = measure_cpu(groups, max(0.5, seconds - min(1.0, seconds / 4) - 0.3))
        machine_busy = (machine_busy_seconds() - busy_before) / (time.monotonic() - t0)
        cpu["machine"] = round(machine_busy, 3)
        # everything on the machine that is not this benchmark (other users' work)
        cpu["other"] = round(max(0.0, machine_busy - sum(v for k, v in cpu.items() if k != "machine")), 3)
        sent = sender.wait(seconds + 30)
        for w in workers:
            w.ask("settle")
        expected = sent["acked"] if sender_spec["transport"] == "jetstream" else sent["sent"]
        # the tail: until every viewer has every message, or deliveries stop growing for 1 s, or
        # `drain` s; `tail` is how long after the last send deliveries still grew (0.1 s resolution)
        sent_at = time.monotonic()
        deadline, last, last_change = sent_at + drain, -1, sent_at
        while time.monotonic() < deadline:
            total = sum(w.ask("count") for w in workers)
            now = time.monotonic()
            if total != last:
                last, last_change = total, now
            if total >= expected * viewers or now - last_change >= 1.0:
                break
            time.sleep(0.1)
        tail = last_change - sent_at
        reports = [w.ask("report", expected) for w in workers]
        server_view = probe.finish() if probe is not None else None
    finally:
        if sender is not None:
            sender.stop()
        for w in workers:
            w.stop()
    latencies = sorted(x for r in reports for x in r["latencies"])
    deliveries = sum(r["deliveries"] for r in reports)
    offered = rate * viewers
    result = {
        "viewers": viewers, "senders": senders, "ratePerSecond": rate, "seconds": seconds,
        "offeredDeliveriesPerSecond": round(offered),
        "messagesSent": sent["sent"], "messagesAcked": sent["acked"], "sendFailures": sent["failed"],
        "senderWorstLatenessSeconds": round(sent["worstLateness"], 4),
        "deliveries": deliveries,
        # over the time from the first send to the last delivery: a server that falls behind and
        # catches up in the tail is not credited with the offered rate
        "deliveriesPerSecond": round(deliveries / (sent["elapsed"] + tail)),
        "tailSeconds": round(tail, 2),
        "expectedDeliveries": expected * viewers,
        "lossByCount": sum(r["missingByCount"] for r in reports),
        "lossRatio": round(sum(r["missingByCount"] for r in reports) / max(1, expected * viewers), 6),
        "viewersShort": sum(r["short"] for r in reports),
        "viewersOver": sum(r["over"] for r in reports),
        "sampleViewers": sum(r["sampleViewers"] for r in reports),
        "sampleMissing": sum(r["sampleMissing"] for r in reports),
        "sampleDuplicates": sum(r["sampleDuplicates"] for r in reports),
        "closedByServer": sum(r["closedByServer"] for r in reports),
        "closeCodes": sorted({c for r in reports for c in r["closeCodes"]}),
        "latencySamples": len(latencies),
        "latencyMs": {"p50": _ms(percentile(latencies, 0.5)), "p99": _ms(percentile(latencies, 0.99)),
                      "max": _ms(latencies[-1] if latencies else None),
                      "mean": _ms(statistics.fmean(latencies) if latencies else None)},
        "joinSeconds": round(joined, 2),
        "cpuCores": cpu,
        "loadAverage1m": round(os.getloadavg()[0], 2),
        "machineBusyCoresBeforeStart": busy_at_start,
        "viewerRcvLowatBytes": lowat,
    }
    if server_view is not None:
        result["server"] = server_view
    progress(f"  V={viewers} S={senders} R={rate:g}/s: {result['deliveriesPerSecond']:,} deliveries/s "
             f"(offered {offered:,.0f}), loss {result['lossByCount']}, dups {result['sampleDuplicates']}, "
             f"p50/p99/max {result['latencyMs']['p50']}/{result['latencyMs']['p99']}/{result['latencyMs']['max']} ms, "
             f"cpu {cpu}")
    return result


def wait_for_quiet(cores: float, timeout: float, progress=print) -> float:
    """Wait (up to `timeout` s) until the machine, with this benchmark idle, uses under `cores`
    cores over one second: other people's work on a shared 2-core machine skews every figure.
    Returns the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        before, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(1.0)
        busy = round((machine_busy_seconds() - before) / (time.monotonic() - t0), 3)
        if busy < cores or time.monotonic() >= deadline:
            if busy >= cores:
                progress(f"  the machine stayed busy ({busy} cores used by others); measuring anyway")
            return busy


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    from _common import CLOCK_TICKS

    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def idle_memory(*, host: str, port: int, protocol: str, room: str, server_pid: int, count: int,
                processes: int, progress=print) -> dict:
    """RSS of the server before and after `count` idle sockets connect (then join one quiet room)."""
    time.sleep(1.0)
    before = rss_bytes(server_pid)
    workers = start_viewers(host, port, protocol, room, count, 0, processes)
    try:
        time.sleep(1.5)
        connected = rss_bytes(server_pid)
        joined = None
        try:  # every join reads the room's history: thousands take a while
            for w in workers:
                w.conn.send(("join", 240.0))
            for w in workers:
                w.wait(300)
            time.sleep(1.5)
            joined = rss_bytes(server_pid)
        except (TimeoutError, RuntimeError) as exc:
            progress(f"  memory: joining {count} sockets to one room failed ({exc}); only the idle figure is kept")
    finally:
        for w in workers:
            w.stop()
    result = {
        "connections": count, "joinsInFlightAtMost": CONNECT_CONCURRENCY * processes, "rssBeforeBytes": before, "rssConnectedBytes": connected, "rssJoinedBytes": joined,
        "bytesPerIdleConnection": round((connected - before) / count),
        "bytesPerIdleConnectionInRoom": round((joined - before) / count) if joined else None,
    }
    in_room = result["bytesPerIdleConnectionInRoom"]
    progress(f"  memory: {result['bytesPerIdleConnection'] / 1024:.2f} KiB per idle connection, "
             f"{in_room / 1024 if in_room else float('nan'):.2f} KiB once joined to a room ({count} sockets)")
    return result
