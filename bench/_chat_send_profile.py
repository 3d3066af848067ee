"""Where the CPU of a chat send goes: ChatService.send driven at a fixed rate on private servers,
with CPU per message per process read from /proc. A helper for profiling (not part of `make bench`).

    .venv/bin/python bench/_chat_send_profile.py [--rate 500] [--seconds 10] [--users 200]
        [--cprofile 30]          # also print the 30 costliest functions of the send path (cProfile)

or, for a flame graph of the sending process (py-spy from PyPI):

    uvx py-spy record -o /tmp/send.svg -- .venv/bin/python bench/_chat_send_profile.py

The sending process plays the part of an edge (or the chat API): it runs ChatService.send with
one task per message, `rate` messages a second spread over 10 ms ticks, from `users` users
(rate limits raised out of the way, slow mode off, banned words and the profanity filter on).
The persister runs as its own process (`python -m chat_service persist`). NATS, PostgreSQL and
Valkey are devstack's binaries, durable as in `make run`. Everything is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
import psycopg
from chat_service.config import Settings
from chat_service.messages.persister import PERSISTER
from chat_service.messages.service import ChatService
from chat_service.moderation.service import handle_event
from contracts.envelope import make_event
from contracts.events.channels import Channel, ChannelFilters
from contracts.events.users import UserProfile
from contracts.subjects import CHAT_STREAM, EVENTS_STREAM
from devstack.ports import free_port
from nats.js.errors import NotFoundError
from devstack.processes import Supervisor
from devstack.servers import NatsServer, Postgres, Valkey
from redis.asyncio import Redis
from servicekit.db import Database, upgrade
from servicekit.messaging import ensure_streams

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, process_tree  # noqa: E402

MIGRATIONS = Path(__file__).resolve().parents[1] / "services/chat/src/chat_service/migrations"


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))] * 1e3


async def seed(db: Database, users: int) -> str:
    """A channel with banned words and the profanity filter on, and `users` registered users."""
    channel_id = str(uuid.uuid4())
    created = make_event("channel.created", Channel(
        id=channel_id, slug="bench", name="bench", description=None, category=None, tags=[], avatar=None,
        banner=None, is_public=True, owner_id="owner"), source="channels")
    filters = make_event("channel.filters_updated", ChannelFilters(
        channel_id=channel_id, banned_words=["spoiler", "bad phrase"], profanity_filter=True,
        slow_mode_seconds=0, followers_only=False), source="channels")
    async with db.session() as session:
        await handle_event(session, created)
        await handle_event(session, filters)
        for n in range(users):
            await handle_event(session, make_event("user.registered", UserProfile(
                user_id=f"user-{n}", username=f"user{n}", display_name=f"User {n}", avatar=None), source="auth"))
        await session.commit()
    return channel_id


async def drive(chat: ChatService, channel_id: str, *, rate: int, seconds: float, users: int,
                tag: str) -> tuple[int, list[float], int]:
    """`rate` sends a second for `seconds`, each its own task; returns (acked, latencies, failed)."""
    latencies: list[float] = []
    failed = 0
    tick = 0.01
    tasks: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()

    async def one(i: int) -> None:
        nonlocal failed
        t = loop.time()
        try:
            await chat.send(user_id=f"user-{i % users}", username=f"user{i % users}", channel_id=channel_id,
                            content="hello world, this is a chat message of the benchmark", nonce=f"{tag}-{i}")
        except Exception as exc:
            failed += 1
            if failed == 1:
                print(f"first failure: {exc!r} (cause {exc.__cause__!r})", file=sys.stderr)
            return
        latencies.append(loop.time() - t)

    started = loop.time()
    sent = 0
    while (elapsed := loop.time() - started) < seconds:
        for _ in range(int(elapsed * rate) + 1 - sent):
            task = loop.create_task(one(sent))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(tick)
    if tasks:
        await asyncio.gather(*tasks)
    return len(latencies), latencies, failed


async def caught_up(js) -> None:
    while True:
        try:
            info = await js.consumer_info(CHAT_STREAM.name, PERSISTER)
        except NotFoundError:  # the persister process is still starting
            await asyncio.sleep(0.2)
            continue
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        await asyncio.sleep(0.05)


async def bench(root: Path, sup: Supervisor, args) -> None:
    ns = NatsServer(free_port(), free_port(), root / "nats").start(sup, "nats")
    pg = Postgres(free_port(), root / "pg", durable=True).start(sup, "pg")
    vk = Valkey(free_port(), root / "vk", durable=True).start(sup, "vk")
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("create database chat")
    upgrade(MIGRATIONS, pg.url("chat"))
    settings = Settings(database_url=pg.url("chat"), nats_url=ns.url, redis_url=vk.url,
                        rate_limit_messages=10**9, rate_limit_moderator_messages=10**9)
    db = Database(settings.database_url)
    nc = await nats.connect(ns.url)
    js = nc.jetstream()
    await ensure_streams(js, [EVENTS_STREAM, CHAT_STREAM])
    redis = Redis.from_url(vk.url)
    channel_id = await seed(db, args.users)
    env = {"DATABASE_URL": settings.database_url, "NATS_URL": ns.url, "REDIS_URL": vk.url, "LOG_LEVEL": "WARNING",
           "METRICS_ENABLED": "false"}
    persister = sup.start("persister", [sys.executable, "-m", "chat_service", "persist"], env=env)
    chat = ChatService(db, js, nc, redis, settings)
    await chat.start()
    try:
        await drive(chat, channel_id, rate=min(args.rate, 200), seconds=1.0, users=args.users, tag="warm")
        await caught_up(js)
        groups = {
            "sender (ChatService.send)": [os.getpid()],
            "persister": process_tree(persister.popen.pid),
            "nats-server": process_tree(ns.child.popen.pid),
            "postgres": process_tree(pg.child.popen.pid),
            "valkey": process_tree(vk.child.popen.pid),
        }
        before = {name: cpu_seconds(pids) for name, pids in groups.items()}
        profiler = cProfile.Profile() if args.cprofile else None
        if profiler:
            profiler.enable()
        t0 = time.monotonic()
        acked, latencies, failed = await drive(chat, channel_id, rate=args.rate, seconds=args.seconds,
                                               users=args.users, tag="run")
        send_elapsed = time.monotonic() - t0
        if profiler:
            profiler.disable()
        await caught_up(js)
        elapsed = time.monotonic() - t0
        # postgres forks backends during the run: read the tree again, new pids started from zero
        groups["postgres"] = process_tree(pg.child.popen.pid)
        after = {name: cpu_seconds(pids) for name, pids in groups.items()}
        print(f"rate {args.rate}/s for {args.seconds:.0f} s: {acked} acked, {failed} failed, "
              f"{acked / send_elapsed:.0f}/s, p50 {pct(latencies, .5):.2f} ms, p99 {pct(latencies, .99):.2f} ms; "
              f"persister caught up {elapsed - send_elapsed:.2f} s after the last send")
        attempts = acked + failed
        print(f"CPU per acked message and per send attempted (ms), over {elapsed:.1f} s incl. the persister "
              "catching up:")
        total = 0.0
        for name in groups:
            used = sum(after[name].get(pid, 0.0) - before[name].get(pid, 0.0) for pid in after[name])
            total += used
            print(f"  {name:28s} {used / max(acked, 1) * 1e3:6.3f}  {used / attempts * 1e3:6.3f}   "
                  f"({used / elapsed:.2f} cores)")
        print(f"  {'total':28s} {total / max(acked, 1) * 1e3:6.3f}  {total / attempts * 1e3:6.3f}")
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.cprofile)
            print(out.getvalue())
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.cprofile)
            print(out.getvalue())
    finally:
        await chat.stop()
        await redis.aclose()
        await nc.close()
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--cprofile", type=int, default=0, help="print this many functions of a cProfile")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="chat-send-profile-"))
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
    sup = Supervisor(root / "logs")
    try:
        import uvloop
        uvloop.run(bench(root, sup, args))
    finally:
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
