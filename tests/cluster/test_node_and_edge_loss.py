"""During a chat load, kill -9 one NATS node (the CHAT stream's leader) and one chat edge: no
acknowledged message is lost. Every `chat:ack`ed id reaches a reader on a surviving edge, is
replayed to a client that resumes from before the load, and is in the persisted history
(PostgreSQL); a nonce resent after a lost ack is stored once.

Runs last of the suite (file order): it leaves the cluster with two NATS nodes and two edges."""

import asyncio
import time

import nats
import psycopg
import pytest
from devstack.chatclient import open_retrying, send_until_acked

pytestmark = pytest.mark.timeout(240)


async def _chat_stream_leader(urls: list[str]) -> str:
    nc = await nats.connect(urls)
    try:
        return (await nc.jetstream().stream_info("CHAT")).cluster.leader
    finally:
        await nc.close()


def test_killing_a_nats_node_and_an_edge_loses_no_acknowledged_message(cluster, register, chat_room,
                                                                       chat_client):
    channel_id, _ = chat_room("load")
    senders_per_edge = 3
    tokens = [register(f"s{i}") for i in range(senders_per_edge * len(cluster.edges))]
    edge_ports = [cluster.edge_port(e.name) for e in cluster.edges]
    victim_edge = cluster.edges[-1].name
    survivor_port = edge_ports[0]
    gateway_port = cluster.config.gateway_port
    load_seconds, rate_per_sender = 12.0, 4.0
    acked: dict[str, int] = {}  # id -> seq, from chat:ack
    sent_nonces: set[str] = set()
    outcome = {"reconnects": 0, "errors": 0}
    ack_times: list[float] = []

    async def sender(index: int, token: str) -> None:
        port = edge_ports[index % len(edge_ports)]
        client = chat_client(port, token)
        await client.open(channel_id)
        stop_at = time.monotonic() + load_seconds
        n = 0
        try:
            while time.monotonic() < stop_at:
                nonce = f"{index}-{n}"
                sent_nonces.add(nonce)
                async def through_the_gateway():
                    # the gateway skips the dead edge
                    fresh = chat_client(gateway_port, token)
                    await open_retrying(fresh, channel_id)
                    return fresh

                client, ack = await send_until_acked(client, nonce, reconnect=through_the_gateway, counts=outcome,
                                                     ack_timeout=8, max_attempts=50)
                acked[ack["id"]] = ack["seq"]
                ack_times.append(time.monotonic())
                n += 1
                await asyncio.sleep(1 / rate_per_sender)
        finally:
            await client.close()

    async def faults() -> None:
        await asyncio.sleep(load_seconds / 3)
        leader = await _chat_stream_leader(cluster.nats.node_urls())
        await asyncio.to_thread(cluster.crash, leader)
        outcome["killed_nats"] = leader
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cluster.crash, victim_edge)

    async def run():
        before = chat_client(survivor_port, None)
        await before.open(channel_id)
        resume_from = before.last_seq
        await before.close()
        reader = chat_client(survivor_port, None)
        await reader.open(channel_id)
        try:
            started = time.monotonic()
            await asyncio.gather(faults(), *(sender(i, t) for i, t in enumerate(tokens)))
            outcome["seconds"] = time.monotonic() - started
            # the reader on a surviving edge saw every acknowledged message live
            deadline = time.monotonic() + 20
            while set(acked) - set(reader.messages) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            missing_live = set(acked) - set(reader.messages)
        finally:
            await reader.close()
        # a client that resumes (through the gateway) from before the load gets every one back
        resumed = chat_client(gateway_port, None)
        history = await resumed.open(channel_id, since=resume_from)
        await resumed.close()
        return missing_live, history

    missing_live, history = asyncio.run(run())
    assert acked, "no message was acknowledged"
    assert "killed_nats" in outcome
    assert not missing_live, f"{len(missing_live)} of {len(acked)} acked messages never reached the reader"
    assert history.get("recovered", True) is not False, "resume lost the window"
    replayed = {m["id"]: m["seq"] for m in history["messages"]}
    assert set(acked) <= set(replayed), f"resume missed {len(set(acked) - set(replayed))}"
    assert all(replayed[i] == s for i, s in acked.items()), "an acked seq differs from the stored one"
    # one message per nonce, even where an ack was lost and the nonce was sent again
    contents = [m["content"] for m in history["messages"]]
    assert len(contents) == len(set(contents)), "a resent nonce was stored twice"
    assert len(acked) == len(sent_nonces)

    # the persister wrote every one of them to PostgreSQL
    dsn = cluster.postgres.dsn("chat")
    deadline = time.monotonic() + 30
    while True:
        with psycopg.connect(dsn) as conn:
            stored = {str(r[0]) for r in conn.execute(
                "select id from chat_messages where channel_id::text = %s", (channel_id,))}
        if set(acked) <= stored or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert set(acked) <= stored, f"{len(set(acked) - stored)} acked messages not persisted"
    print(f"\ncluster chat load: {len(acked)} acked in {outcome['seconds']:.1f}s, killed "
          f"{outcome['killed_nats']} and {victim_edge}; reconnects {outcome['reconnects']}, "
          f"error answers {outcome['errors']}; longest pause between acks "
          f"{max(b - a for a, b in zip(sorted(ack_times), sorted(ack_times)[1:], strict=False)):.2f}s")

