"""Read-your-writes: a channel chat's replica has not heard of yet (its `channel.created` still on
the way) is asked of channels (`channels.get`) before chat answers "no such channel"."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from contracts.events.channels import Channel as ChannelPayload
from contracts.requests import ChannelGetReply, ChannelGetRequest
from contracts.subjects import CHANNELS_GET
from sqlalchemy import text


class ChannelsResponder:
    """Answers `channels.get` on the real NATS as the channels service does (its own responder is
    tested in services/channels/tests/test_channel_lookup.py; the whole path in tests/e2e)."""

    def __init__(self):
        self.channels: dict[str, tuple[ChannelPayload, datetime]] = {}
        self.asked: list[str] = []

    async def on_request(self, msg):
        channel_id = ChannelGetRequest.model_validate_json(msg.data).channel_id
        self.asked.append(channel_id)
        known = self.channels.get(channel_id)
        reply = (ChannelGetReply(found=True, channel=known[0], updated_at=known[1]) if known
                 else ChannelGetReply(found=False))
        await msg.respond(reply.to_json_bytes())


@pytest.fixture
async def channels_service(nc):
    responder = ChannelsResponder()
    sub = await nc.subscribe(CHANNELS_GET, cb=responder.on_request)
    await nc.flush()
    yield responder
    await sub.unsubscribe()


def channel(channel_id: str, owner_id: str, slug: str) -> ChannelPayload:
    return ChannelPayload(id=channel_id, slug=slug, name="New", description=None, category=None, tags=[],
                          avatar=None, banner=None, is_public=True, owner_id=owner_id)


async def test_a_send_right_after_the_channel_was_created_asks_channels(client, channels_service, make_user, db,
                                                                         publish, settled):
    owner = make_user()
    channel_id = str(uuid.uuid4())
    created = datetime.now(UTC)
    channels_service.channels[channel_id] = (channel(channel_id, owner.id, "brand-new"), created)

    r = await client.post("/api/messages", headers=owner.headers, json={"channelId": channel_id, "content": "hi"})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["badges"] == ["owner"]
    assert (await client.get(f"/api/channels/{channel_id}/messages")).status_code == 200
    assert channels_service.asked == [channel_id]  # recorded and cached, not asked again
    async with db() as session:
        row = (await session.exec(text("SELECT owner_id, slug, synced_at FROM chat_channels WHERE id = :c")
                                  .bindparams(c=channel_id))).one()
    assert tuple(row) == (owner.id, "brand-new", created)

    # the event arriving afterwards applies as usual (a later change wins, an older one does not)
    await publish("channel.created", channel(channel_id, owner.id, "brand-new"), time=created)
    await publish("channel.updated", channel(channel_id, owner.id, "renamed"), time=created + timedelta(seconds=1))
    await settled()
    async with db() as session:
        slug = (await session.exec(text("SELECT slug FROM chat_channels WHERE id = :c").bindparams(c=channel_id))
                ).scalar_one()
    assert slug == "renamed"


async def test_a_channel_channels_does_not_know_is_still_404(client, channels_service, make_user, assert_problem):
    user = make_user()
    missing = str(uuid.uuid4())
    assert_problem(await client.post("/api/messages", headers=user.headers,
                                     json={"channelId": missing, "content": "anyone?"}), 404)
    assert channels_service.asked == [missing]


async def test_without_an_answer_from_channels_the_replica_answers(client, make_user, assert_problem):
    # nobody answers channels.get here: the lookup fails fast and the replica's 404 stands
    user = make_user()
    assert_problem(await client.post("/api/messages", headers=user.headers,
                                     json={"channelId": str(uuid.uuid4()), "content": "anyone?"}), 404)
