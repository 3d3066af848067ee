"""Chat core micro-benchmark on private servers (NATS, PostgreSQL, Valkey from devstack's binaries):
ChatService.send latency and throughput, persister throughput, history and resume reads.

    .venv/bin/python bench/chat_core.py [--messages 2000]

Everything it starts is stopped at the end; nothing else on the machine is touched.
"""

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import nats
import psycopg
from chat_service.config import Settings
from chat_service.messages.persister import Persister
from chat_service.messages.service import ChatService
from chat_service.moderation.service import handle_event
from contracts.envelope import make_event
from contracts.events.channels import Channel
from contracts.subjects import CHAT_STREAM, EVENTS_STREAM
from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import NatsServer, Postgres, Valkey
from redis.asyncio import Redis
from servicekit.db import Database, upgrade
from servicekit.messaging import ensure_streams

MIGRATIONS = Path(__file__).resolve().parents[1] / "services/chat/src/chat_service/migrations"


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))] * 1e3


async def bench(root: Path, sup: Supervisor, n: int) -> None:
    ns = NatsServer(free_port(), free_port(), root / "nats").start(sup, "nats")
    pg = Postgres(free_port(), root / "pg", durable=False).start(sup, "pg")
    vk = Valkey(free_port(), root / "vk", durable=False).start(sup, "vk")
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
    channel_id = str(uuid.uuid4())
    created = make_event("channel.created", Channel(id=channel_id, slug="bench", name="bench", description=None,
                         category=None, tags=[], avatar=None, banner=None, is_public=True, owner_id="owner"),
                         source="channels")
    async with db.session() as session:
        await handle_event(session, created)
        await session.commit()
    chat = ChatService(db, js, nc, redis, settings)
    await chat.start()
    try:
        for i in range(50):  # warm caches and connections
            await chat.send(user_id=f"u{i}", username="u", channel_id=channel_id, content="warm")
        latencies = []
        started = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            await chat.send(user_id=f"u{i % 100}", username="u", channel_id=channel_id, content=f"hello {i}",
                            nonce=f"a{i}")
            latencies.append(time.perf_counter() - t)
        rate = n / (time.perf_counter() - started)
        print(f"send, one at a time: {n} messages, {rate:.0f}/s, p50 {pct(latencies, .5):.2f} ms, "
              f"p99 {pct(latencies, .99):.2f} ms")

        gate = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with gate:
                await chat.send(user_id=f"u{i % 100}", username="u", channel_id=channel_id, content=f"c {i}",
                                nonce=f"b{i}")

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(2 * n)))
        print(f"send, 64 concurrent: {2 * n} messages, {2 * n / (time.perf_counter() - started):.0f}/s")

        total = (await js.stream_info(CHAT_STREAM.name)).state.messages
        persister = Persister(db, js, batch=500, fetch_timeout=0.5)
        await persister.subscribe()
        started, done = time.perf_counter(), 0
        while done < total:
            done += await persister.run_once()
        elapsed = time.perf_counter() - started
        print(f"persister: {done} events in {elapsed:.2f} s = {done / elapsed:.0f}/s (batches of 500)")

        started = time.perf_counter()
        history = await chat.history(channel_id, limit=50)
        print(f"history(50), all persisted: {(time.perf_counter() - started) * 1e3:.1f} ms")
        started = time.perf_counter()
        events, recovered = await chat.events_since(channel_id, history[-1]["seq"] - 500)
        print(f"events_since 500 back: {len(events)} events, recovered={recovered}, "
              f"{(time.perf_counter() - started) * 1e3:.1f} ms")
    finally:
        await chat.stop()
        await redis.aclose()
        await nc.close()
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="chat-core-bench-"))
    sup = Supervisor(root / "logs")
    try:
        asyncio.run(bench(root, sup, args.messages))
    finally:
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
