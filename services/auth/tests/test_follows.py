"""User-to-user follows: POST/DELETE /api/users/{id}/follow, GET /api/users/{id}/followers|following
and the counts on GET /api/users/{id}."""

import uuid


async def page(client, path, **params) -> dict:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.json().keys() == {"items", "nextCursor"}
    return r.json()


async def test_follow_counts_lists_and_unfollow(client, register, bearer):
    a, b, c = await register("fol_a"), await register("fol_b"), await register("fol_c")
    b_id = b["user"]["id"]
    for who in (a, c):
        r = await client.post(f"/api/users/{b_id}/follow", headers=bearer(who))
        assert r.status_code == 204 and r.content == b""
    # by username too, as GET /api/users/{id} takes it
    assert (await client.post("/api/users/fol_c/follow", headers=bearer(a))).status_code == 204

    profile = (await client.get(f"/api/users/{b_id}", headers=bearer(a))).json()
    assert (profile["followerCount"], profile["followingCount"], profile["isFollowing"]) == (2, 0, True)
    assert (await client.get(f"/api/users/{b_id}")).json()["isFollowing"] is None
    assert (await client.get(f"/api/users/{b_id}", headers=bearer(b))).json()["isFollowing"] is False
    a_profile = (await client.get("/api/users/fol_a")).json()
    assert (a_profile["followerCount"], a_profile["followingCount"]) == (0, 2)

    followers = await page(client, f"/api/users/{b_id}/followers")
    assert [u["username"] for u in followers["items"]] == ["fol_c", "fol_a"]  # newest first
    assert "email" not in followers["items"][0]
    assert [u["username"] for u in (await page(client, "/api/users/fol_a/following"))["items"]] == ["fol_c", "fol_b"]

    assert (await client.delete(f"/api/users/{b_id}/follow", headers=bearer(a))).status_code == 204
    assert (await client.delete(f"/api/users/{b_id}/follow", headers=bearer(a))).status_code == 204  # no-op
    assert [u["username"] for u in (await page(client, f"/api/users/{b_id}/followers"))["items"]] == ["fol_c"]
    assert (await client.get(f"/api/users/{b_id}")).json()["followerCount"] == 1


async def test_follow_is_idempotent(client, register, bearer):
    a, b = await register("idem_a"), await register("idem_b")
    for _ in range(3):
        assert (await client.post(f"/api/users/{b['user']['id']}/follow", headers=bearer(a))).status_code == 204
    assert (await client.get(f"/api/users/{b['user']['id']}")).json()["followerCount"] == 1


async def test_follow_refusals(client, register, bearer, assert_problem):
    me = await register("fol_self")
    r = await client.post(f"/api/users/{me['user']['id']}/follow", headers=bearer(me))
    assert_problem(r, 422)
    assert r.json()["errors"][0]["field"] == "user_id"
    for method in ("post", "delete"):
        assert_problem(await getattr(client, method)(f"/api/users/{uuid.uuid4()}/follow", headers=bearer(me)), 404)
        assert_problem(await getattr(client, method)(f"/api/users/{me['user']['id']}/follow"), 401)
    for kind in ("followers", "following"):
        assert_problem(await client.get(f"/api/users/{uuid.uuid4()}/{kind}"), 404)
        assert_problem(await client.get(f"/api/users/fol_self/{kind}", params={"cursor": "not-a-cursor!"}), 400)
        assert_problem(await client.get(f"/api/users/fol_self/{kind}", params={"limit": 0}), 422)


async def test_followers_paginate_without_gaps(client, register, bearer):
    star = await register("star_1")
    fans = [await register(f"fan_{i}") for i in range(5)]
    for fan in fans:
        assert (await client.post("/api/users/star_1/follow", headers=bearer(fan))).status_code == 204
    seen, cursor = [], None
    while True:
        body = await page(client, f"/api/users/{star['user']['id']}/followers",
                          limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [u["username"] for u in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"fan_{i}" for i in reversed(range(5))]
