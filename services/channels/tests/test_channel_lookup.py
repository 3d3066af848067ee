"""`channels.get` over real NATS: what a replica asks on a miss (read-your-writes for streams and
chat right after `POST /api/channels`)."""

import uuid

from contracts.requests import CHANNEL_GET, ChannelGetReply, ChannelGetRequest
from servicekit.messaging import ask


async def test_a_channel_is_known_the_moment_its_create_answered(client, nc, make_user, create_channel):
    owner = make_user()
    ch = await create_channel(owner, "Right Away")
    reply = await ask(nc, CHANNEL_GET, ChannelGetRequest(channel_id=ch["id"]), timeout=3)
    assert reply.found and reply.updated_at is not None
    assert (reply.channel.id, reply.channel.owner_id, reply.channel.slug, reply.channel.name) == (
        ch["id"], owner.id, ch["slug"], "Right Away")

    r = await client.put(f"/api/channels/{ch['id']}", headers=owner.headers, json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    again = await ask(nc, CHANNEL_GET, ChannelGetRequest(channel_id=ch["id"]), timeout=3)
    assert again.channel.name == "Renamed" and again.updated_at >= reply.updated_at


async def test_unknown_and_malformed_requests_answer_not_found(nc):
    reply = await ask(nc, CHANNEL_GET, ChannelGetRequest(channel_id=str(uuid.uuid4())), timeout=3)
    assert reply == ChannelGetReply(found=False)
    for junk in (b"", b"not json", b'{"channelId": 5}', b'{"channelId": "x"}', b"[" * 5000):
        msg = await nc.request(CHANNEL_GET.subject, junk, timeout=3)
        assert ChannelGetReply.model_validate_json(msg.data).found is False
