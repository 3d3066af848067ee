"""An edge (no database: moderation from the KV snapshots and core NATS) applies subscribers-only
and shows the subscriber badge as the chat API does (test_subscribers.py)."""

from __future__ import annotations


async def _join(c, channel_id):
    c.send({"type": "chat:join", "channelId": channel_id})
    return await c.expect("chat:history")


async def test_subscribers_only_and_the_badge_on_an_edge(chat_app, make_channel, moderation_events, start_edge,
                                                        client, make_user):
    owner, viewer = make_user("owner"), make_user("viewer")
    channel_id = await make_channel(owner)
    await moderation_events.filters(channel_id, subscribers_only=True)
    edge = await start_edge(None)  # the real core, without a database
    reader, sender = await client(edge), await client(edge, viewer.token)
    await _join(reader, channel_id)
    await _join(sender, channel_id)

    sender.send({"type": "chat:send", "content": "let me in", "nonce": "n1"})
    assert (await sender.expect("chat:error", nonce="n1"))["code"] == "subscribers_only"

    await moderation_events.subscription(channel_id, viewer.id, "PREMIUM")
    sender.send({"type": "chat:send", "content": "subscribed", "nonce": "n2"})
    ack = await sender.expect("chat:ack")
    got = (await reader.expect("chat:message"))["message"]
    assert got["id"] == ack["id"] and got["user"]["badges"] == ["subscriber:PREMIUM"]

    await moderation_events.subscription(channel_id, viewer.id, "PREMIUM", event="subscription.expired",
                                         status="EXPIRED")
    sender.send({"type": "chat:send", "content": "again", "nonce": "n3"})
    assert (await sender.expect("chat:error", nonce="n3"))["code"] == "subscribers_only"
