"""The local channel projection fed by channel.created / channel.updated."""

import uuid
from datetime import UTC, datetime, timedelta

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
