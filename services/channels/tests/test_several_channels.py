"""Several channels per creator (API.md Extensions): 201 up to MAX_CHANNELS_PER_USER, then 409
problem+json; `?owner=me`; each channel keeps its own stream key, rotation and ingest identity."""

import asyncio
import uuid

from channels_service.config import Settings
from contracts.requests import IngestAuthorizeReply, IngestAuthorizeRequest
from contracts.subjects import CHANNELS_INGEST_AUTHORIZE


async def ask(nc, key: str) -> IngestAuthorizeReply:
    """What the media gateway hears for `key` (tests run with importlib: no import of test_stream_keys)."""
    request = IngestAuthorizeRequest(stream_key=key, client_ip="127.0.0.1").to_json_bytes()
    msg = await nc.request(CHANNELS_INGEST_AUTHORIZE, request, timeout=3)
    return IngestAuthorizeReply.model_validate_json(msg.data)


def ids(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["items"]]


async def test_201_up_to_the_limit_then_409_problem(client, make_user, create_channel, problem, published,
                                                    eventually, channels_settings):
    assert Settings.model_fields["max_channels_per_user"].default == 10  # API.md's default
    limit = channels_settings.max_channels_per_user
    alice, bob = make_user(), make_user()
    made = [await create_channel(alice, f"Alice {i}") for i in range(limit)]
    assert len({c["id"] for c in made}) == limit and {c["ownerId"] for c in made} == {alice.id}

    r = await client.post("/api/channels", json={"name": "One too many"}, headers=alice.headers)
    body = problem(r, 409)
    assert str(limit) in body["detail"]
    assert body["errors"] == [{"field": None, "message": f"at most {limit} channels per user",
                               "type": "channel_limit"}]
    # the refused one left nothing behind: no row, no event
    mine = ids(await client.get(f"/api/channels?owner=me&limit={limit + 5}", headers=alice.headers))
    assert sorted(mine) == sorted(c["id"] for c in made)
    async def alices_created():
        events = [e for e in await published("channel.created") if e.data.owner_id == alice.id]
        return events if len(events) >= limit else None

    assert len(await eventually(alices_created, message="channel.created published")) == limit
    # the limit is per owner: bob is not affected
    await create_channel(bob, "Bob's first")


async def test_concurrent_creates_never_pass_the_limit(client, make_user, channels_settings):
    limit = channels_settings.max_channels_per_user
    carol = make_user()
    answers = await asyncio.gather(*(
        client.post("/api/channels", json={"name": f"Race {i}"}, headers=carol.headers) for i in range(limit + 4)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * limit + [409] * 4, [r.text for r in answers if r.status_code not in (201, 409)]
    assert len(ids(await client.get(f"/api/channels?owner=me&limit={limit + 5}", headers=carol.headers))) == limit


async def test_owner_me_lists_the_callers_channels_unlisted_included(client, make_user, create_channel, problem):
    alice, bob = make_user(), make_user()
    listed = await create_channel(alice, "Alice on air")
    unlisted = await create_channel(alice, "Alice backstage", isPublic=False)
    bobs = await create_channel(bob, "Bob's")

    assert sorted(ids(await client.get("/api/channels?owner=me", headers=alice.headers))) == \
        sorted([listed["id"], unlisted["id"]])
    assert ids(await client.get("/api/channels?owner=me", headers=bob.headers)) == [bobs["id"]]
    # the same list by id; strangers see only the listed one
    assert sorted(ids(await client.get(f"/api/channels?owner={alice.id}", headers=alice.headers))) == \
        sorted([listed["id"], unlisted["id"]])
    assert ids(await client.get(f"/api/channels?owner={alice.id}", headers=bob.headers)) == [listed["id"]]
    assert ids(await client.get(f"/api/channels?owner={alice.id}")) == [listed["id"]]
    # combines with the other filters and pages
    assert ids(await client.get("/api/channels?owner=me&q=backstage", headers=alice.headers)) == [unlisted["id"]]
    first = await client.get("/api/channels?owner=me&limit=1", headers=alice.headers)
    second = await client.get(f"/api/channels?owner=me&limit=1&cursor={first.json()['nextCursor']}",
                              headers=alice.headers)
    assert sorted(ids(first) + ids(second)) == sorted([listed["id"], unlisted["id"]])
    assert second.json()["nextCursor"] is None
    # a user with no channel gets an empty page
    assert ids(await client.get("/api/channels?owner=me", headers=make_user().headers)) == []

    r = await client.get("/api/channels?owner=me")
    assert problem(r, 401)["detail"] == "Sign in to list your own channels."
    assert r.headers["www-authenticate"] == "Bearer"
    problem(await client.get("/api/channels?owner=me", headers={"Authorization": "Bearer garbage"}), 401)
    for bad in ("ME", "you", "me%00", "", str(uuid.uuid4())[:-1], "not-a-uuid"):
        problem(await client.get(f"/api/channels?owner={bad}", headers=alice.headers), 422)


async def test_each_channel_has_its_own_key_rotation_and_ingest(client, make_user, create_channel, stream_key,
                                                                nc, published, eventually):
    alice = make_user()
    first = await create_channel(alice, "Alice one")
    second = await create_channel(alice, "Alice two")
    key_one, key_two = await stream_key(alice, first["id"]), await stream_key(alice, second["id"])
    assert key_one != key_two
    assert (await ask(nc, key_one)).channel_id == first["id"]
    assert (await ask(nc, key_two)).channel_id == second["id"]

    r = await client.post(f"/api/channels/{second['id']}/stream-key/rotate", headers=alice.headers)
    assert r.status_code == 200, r.text
    new_two = r.json()["streamKey"]
    assert new_two not in (key_one, key_two)
    # only the rotated channel's old key stops working; the other channel keeps its key
    assert (await ask(nc, key_two)).reason == "unknown stream key"
    assert (await ask(nc, new_two)).channel_id == second["id"]
    assert (await ask(nc, key_one)).channel_id == first["id"]
    assert await stream_key(alice, first["id"]) == key_one

    rotated = await eventually(lambda: published("channel.stream_key_rotated"), message="rotation published")
    assert [e.data.channel_id for e in rotated if e.data.channel_id in (first["id"], second["id"])] == [second["id"]]
