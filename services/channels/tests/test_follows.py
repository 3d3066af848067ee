"""POST/DELETE /api/channels/{id}/follow: idempotent, counted, announced once per change."""

import uuid


async def test_follow_unfollow_idempotent_counted_and_announced(client, make_user, create_channel, problem,
                                                                 published, eventually):
    alice, bob, carol = make_user(), make_user(), make_user()
    ch = await create_channel(alice, slug="followed")
    url = f"/api/channels/{ch['id']}/follow"

    async def count() -> int:
        return (await client.get("/api/channels/followed")).json()["followerCount"]

    for _ in range(2):
        r = await client.post(url, headers=bob.headers)
        assert r.status_code == 204 and r.content == b""
    assert (await client.post(url, headers=carol.headers)).status_code == 204
    assert await count() == 2
    for _ in range(2):
        assert (await client.delete(url, headers=bob.headers)).status_code == 204
    assert await count() == 1

    followed = await eventually(lambda: published("channel.followed"), message="channel.followed")
    await eventually(lambda: published("channel.unfollowed"), message="channel.unfollowed")
    assert sorted(e.data.user_id for e in followed) == sorted([bob.id, carol.id])  # bob's repeat added nothing
    unfollowed = await published("channel.unfollowed")
    assert [(e.data.channel_id, e.data.user_id) for e in unfollowed] == [(ch["id"], bob.id)]

    problem(await client.post(url), 401)
    problem(await client.delete(url), 401)
    body = problem(await client.post(url, headers=alice.headers), 422)
    assert "own channel" in body["detail"]
    for bad in (f"/api/channels/{uuid.uuid4()}/follow", "/api/channels/nope/follow"):
        problem(await client.post(bad, headers=bob.headers), 404)
        problem(await client.delete(bad, headers=bob.headers), 404)
    assert await count() == 1
