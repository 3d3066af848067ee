"""Chat on the rehearsal cluster: a message sent on one edge reaches the sockets of every edge."""

import asyncio
import time


def test_a_message_reaches_every_edge(cluster, register, chat_room, chat_client):
    channel_id, _ = chat_room("across")
    tokens = [register(f"u{i}") for i in range(3)]
    ports = [cluster.edge_port(e.name) for e in cluster.edges]

    async def run():
        clients = [chat_client(port, token) for port, token in zip(ports, tokens, strict=True)]
        try:
            for c in clients:
                await c.open(channel_id)
            await clients[0].send({"type": "chat:send", "content": "hello from edge 1", "nonce": "n-1"})
            ack = await clients[0].expect("chat:ack", timeout=10, nonce="n-1")
            for c in clients:  # the sender too (its copy may come before its ack)
                deadline = time.monotonic() + 10
                while ack["id"] not in c.messages and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert c.messages.get(ack["id"]) == ack["seq"], f"edge on :{c.port} did not deliver it"
        finally:
            for c in clients:
                await c.close()

    asyncio.run(run())
