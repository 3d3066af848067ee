"""The local channel projection fed by channel.created / channel.updated."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events.channels import Channel as ChannelPayload

from streams_service.channels.models import Channel


def payload(channel_id: str, owner_id: str, name: str, slug: str = "slug") -> ChannelPayload:
    return ChannelPayload(id=channel_id, slug=slug, name=name, description=None, category=None, tags=[],
                          avatar=None, banner=None, is_public=True, owner_id=owner_id)


async def projected(db, channel_id: str) -> Channel | None:
    async with db() as session:
        return await session.get(Channel, channel_id)


async def test_created_then_updated_and_a_late_older_update_is_ignored(client, publish, settled, db,
                                                                        make_user):
    owner = make_user()
    channel_id = str(uuid.uuid4())
    t0 = datetime.now(UTC)
    await publish("channel.created", payload(channel_id, owner.id, "First", "first"), time=t0,
                  source="channels")
    await publish("channel.updated", payload(channel_id, owner.id, "Third", "third"),
                  time=t0 + timedelta(seconds=2), source="channels")
    await publish("channel.updated", payload(channel_id, owner.id, "Second", "second"),
                  time=t0 + timedelta(seconds=1), source="channels")
    await settled("streams-channels")
    row = await projected(db, channel_id)
    assert (row.name, row.slug, row.owner_id) == ("Third", "third", owner.id)
    # sessions the ingest or Go live create take the current name
    r = await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)
    assert r.status_code == 200 and r.json()["title"] == "Third"


async def test_only_the_owner_in_the_projection_may_prepare(client, make_user, make_channel, assert_problem):
    owner, stranger = make_user(), make_user()
    channel_id = await make_channel(owner)
    assert_problem(await client.post("/api/streams", headers=stranger.headers,
                                     json={"channelId": channel_id, "title": "mine now"}), 403)
    assert_problem(await client.post(f"/api/streams/{channel_id}/start", headers=stranger.headers), 403)
    r = await client.post("/api/streams", headers=owner.headers,
                          json={"channelId": channel_id, "title": "mine"})
    assert r.status_code == 201


# ---- read-your-writes: a projection miss asks channels (`channels.get`) before answering 404 ----

class ChannelsResponder:
    """Answers `channels.get` on the real NATS as the channels service does (its own responder is
    tested in services/channels/tests/test_channel_lookup.py; the whole path in tests/e2e)."""

    def __init__(self):
        self.channels: dict[str, tuple[ChannelPayload, datetime]] = {}
        self.asked: list[str] = []

    async def on_request(self, msg):
        from contracts.requests import ChannelGetReply, ChannelGetRequest

        channel_id = ChannelGetRequest.model_validate_json(msg.data).channel_id
        self.asked.append(channel_id)
        known = self.channels.get(channel_id)
        reply = (ChannelGetReply(found=True, channel=known[0], updated_at=known[1]) if known
                 else ChannelGetReply(found=False))
        await msg.respond(reply.to_json_bytes())


@pytest.fixture
async def channels_service(nc):
    from contracts.subjects import CHANNELS_GET

    responder = ChannelsResponder()
    sub = await nc.subscribe(CHANNELS_GET, cb=responder.on_request)
    await nc.flush()
    yield responder
    await sub.unsubscribe()


async def test_go_live_on_a_channel_the_projection_has_not_heard_of_asks_channels(
        client, channels_service, make_user, db, publish, settled):
    owner = make_user()
    channel_id = str(uuid.uuid4())
    created = datetime.now(UTC)
    channels_service.channels[channel_id] = (payload(channel_id, owner.id, "Brand New", "brand-new"), created)

    r = await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Brand New" and channels_service.asked == [channel_id]
    row = await projected(db, channel_id)
    assert (row.owner_id, row.name, row.synced_at) == (owner.id, "Brand New", created)

    # recorded: asked once, not on every request
    r = await client.post("/api/streams", headers=owner.headers, json={"channelId": channel_id, "title": "t"})
    assert r.status_code == 200 and channels_service.asked == [channel_id]

    # the event arrives afterwards and changes nothing it should not; a later rename still applies
    await publish("channel.created", payload(channel_id, owner.id, "Brand New", "brand-new"),
                  time=created, source="channels")
    await publish("channel.updated", payload(channel_id, owner.id, "Renamed", "brand-new"),
                  time=created + timedelta(seconds=1), source="channels")
    await settled("streams-channels")
    assert (await projected(db, channel_id)).name == "Renamed"


async def test_prepare_and_list_ask_channels_too_and_the_owner_check_still_holds(
        client, channels_service, make_user):
    owner, stranger = make_user(), make_user()
    channel_id = str(uuid.uuid4())
    channels_service.channels[channel_id] = (payload(channel_id, owner.id, "Fresh", "fresh"), datetime.now(UTC))
    r = await client.get(f"/api/channels/{channel_id}/streams")
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.post("/api/streams", headers=stranger.headers, json={"channelId": channel_id, "title": "x"})
    assert r.status_code == 403
    r = await client.post("/api/streams", headers=owner.headers, json={"channelId": channel_id, "title": "x"})
    assert r.status_code == 201, r.text


async def test_a_channel_that_channels_does_not_know_is_404(client, channels_service, make_user, assert_problem):
    owner = make_user()
    missing = str(uuid.uuid4())
    assert_problem(await client.post(f"/api/streams/{missing}/start", headers=owner.headers), 404)
    assert_problem(await client.get(f"/api/channels/{missing}/streams"), 404)
    assert channels_service.asked == [missing, missing]


async def test_without_an_answer_from_channels_the_projection_answers(client, make_user, assert_problem):
    # nobody subscribed to channels.get: the lookup fails fast (no responders) and 404 stands
    owner = make_user()
    assert_problem(await client.post(f"/api/streams/{uuid.uuid4()}/start", headers=owner.headers), 404)
