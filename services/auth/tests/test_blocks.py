"""Blocking users: POST/DELETE /api/users/{id}/block and GET /api/users/me/blocks."""

import uuid

import pytest
from sqlalchemy import text

from auth_service.blocks.models import Block
from auth_service.users.models import User


async def blocks(client, bearer, user, **params) -> dict:
    r = await client.get("/api/users/me/blocks", headers=bearer(user), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() == {"items", "nextCursor"}
    return body


async def walk(client, bearer, user, limit: int) -> tuple[list[str], int]:
    """Follow nextCursor to the end; returns the ids in order and the number of pages."""
    ids, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await blocks(client, bearer, user, **params)
        pages += 1
        assert len(page["items"]) <= limit
        ids += [u["id"] for u in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            return ids, pages
        assert page["items"], "a page with a next cursor must not be empty"
        assert pages < 500


async def test_block_lists_and_unblock_removes(client, register, bearer):
    me = await register("blocker_1")
    target = await register("target_1")
    r = await client.post(f"/api/users/{target['user']['id']}/block", headers=bearer(me))
    assert r.status_code == 204 and r.content == b""
    page = await blocks(client, bearer, me)
    assert page["nextCursor"] is None
    assert page["items"] == [
        {k: target["user"][k] for k in ("id", "username", "displayName", "avatar", "bio", "createdAt")}
    ]
    assert "email" not in page["items"][0]

    r = await client.delete(f"/api/users/{target['user']['id']}/block", headers=bearer(me))
    assert r.status_code == 204
    assert (await blocks(client, bearer, me))["items"] == []


async def test_blocking_is_idempotent(client, register, bearer, db):
    me = await register("blocker_2")
    target = await register("target_2")
    for _ in range(3):
        assert (
            await client.post(f"/api/users/{target['user']['id']}/block", headers=bearer(me))
        ).status_code == 204
    assert [u["id"] for u in (await blocks(client, bearer, me))["items"]] == [target["user"]["id"]]
    async with db() as session:
        assert (await session.execute(text("SELECT count(*) FROM blocks"))).scalar_one() == 1


async def test_unblocking_someone_not_blocked_is_204(client, register, bearer):
    me = await register("blocker_3")
    target = await register("target_3")
    assert (
        await client.delete(f"/api/users/{target['user']['id']}/block", headers=bearer(me))
    ).status_code == 204


async def test_blocks_are_per_caller(client, register, bearer):
    a, b, c = await register("blk_a"), await register("blk_b"), await register("blk_c")
    await client.post(f"/api/users/{c['user']['id']}/block", headers=bearer(a))
    assert (await blocks(client, bearer, b))["items"] == []
    assert (await blocks(client, bearer, c))[
        "items"
    ] == []  # the blocked user does not see a block list entry
    # b unblocking c does not touch a's block
    await client.delete(f"/api/users/{c['user']['id']}/block", headers=bearer(b))
    assert len((await blocks(client, bearer, a))["items"]) == 1


async def test_blocking_yourself_is_422(client, register, bearer, assert_problem):
    me = await register("blocker_4")
    assert_problem(
        await client.post(f"/api/users/{me['user']['id']}/block", headers=bearer(me)),
        422,
        fields=("user_id",),
    )
    assert (await blocks(client, bearer, me))["items"] == []


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_unknown_user_is_404(client, register, bearer, assert_problem, method, user_id):
    me = await register("blocker_5")
    assert_problem(await client.request(method, f"/api/users/{user_id}/block", headers=bearer(me)), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/users/{id}/block"), ("DELETE", "/api/users/{id}/block"), ("GET", "/api/users/me/blocks")],
)
async def test_blocks_require_a_token(client, register, assert_problem, method, path):
    target = await register("target_anon")
    assert_problem(await client.request(method, path.format(id=target["user"]["id"])), 401)


async def test_pagination_with_limit_one_walks_every_block_newest_first(client, register, bearer):
    me = await register("pager_1")
    targets = [await register(f"paged_{i}") for i in range(4)]
    for t in targets:
        assert (
            await client.post(f"/api/users/{t['user']['id']}/block", headers=bearer(me))
        ).status_code == 204
    ids, pages = await walk(client, bearer, me, limit=1)
    assert ids == [t["user"]["id"] for t in reversed(targets)]
    assert pages == 4
    # a page size that does not divide the total
    ids3, pages3 = await walk(client, bearer, me, limit=3)
    assert ids3 == ids and pages3 == 2


async def test_unblocked_users_leave_later_pages(client, register, bearer):
    me = await register("pager_2")
    targets = [await register(f"gone_{i}") for i in range(3)]
    for t in targets:
        await client.post(f"/api/users/{t['user']['id']}/block", headers=bearer(me))
    first = await blocks(client, bearer, me, limit=1)
    await client.delete(f"/api/users/{targets[1]['user']['id']}/block", headers=bearer(me))
    rest = await blocks(client, bearer, me, limit=10, cursor=first["nextCursor"])
    assert [u["id"] for u in rest["items"]] == [targets[0]["user"]["id"]]


@pytest.fixture
async def many_blocks(db, register):
    """A caller who blocked 120 users, all inserted in one transaction (so every block has the same
    created_at and the pagination must break ties on the user id)."""
    me = await register("heavy_blocker")
    blocker = uuid.UUID(me["user"]["id"])
    async with db() as session:
        users = [
            User(email=f"bulk_{i}@example.com", username=f"bulk_{i}", password_hash="x", display_name=f"B{i}")
            for i in range(120)
        ]
        session.add_all(users)
        await session.flush()
        session.add_all([Block(blocker_id=blocker, blocked_id=u.id) for u in users])
        await session.commit()
        ids = {str(u.id) for u in users}
    return me, ids


async def test_large_limit_is_clamped_not_refused(client, bearer, many_blocks):
    me, ids = many_blocks
    page = await blocks(client, bearer, me, limit=1000)
    assert len(page["items"]) == 100  # API.md: max 100, larger is clamped
    assert page["nextCursor"] is not None
    default = await blocks(client, bearer, me)
    assert len(default["items"]) == 50  # API.md: default 50
    rest = await blocks(client, bearer, me, limit=1000, cursor=page["nextCursor"])
    assert len(rest["items"]) == 20 and rest["nextCursor"] is None
    assert {u["id"] for u in page["items"] + rest["items"]} == ids


async def test_pages_never_skip_or_repeat_on_equal_timestamps(client, bearer, many_blocks):
    me, ids = many_blocks
    walked, pages = await walk(client, bearer, me, limit=7)
    assert len(walked) == len(set(walked)) == 120
    assert set(walked) == ids
    assert pages == 18


@pytest.mark.parametrize("limit", [0, -1, "ten"])
async def test_nonsense_limit_is_422(client, register, bearer, assert_problem, limit):
    me = await register("limit_bad")
    r = await client.get("/api/users/me/blocks", headers=bearer(me), params={"limit": limit})
    assert_problem(r, 422, fields=("limit",))


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "bm90IGpzb24",
        "WzFd",
        "eyJhdCI6IDF9",
        "eyJhdCI6ICIyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgImlkIjogIngifQ",
    ],
)
async def test_invalid_cursor_is_400(client, register, bearer, assert_problem, cursor):
    # not base64 / not JSON / a list / {"at": 1} / {"at": "...", "id": "x"}
    me = await register("cursor_bad")
    r = await client.get("/api/users/me/blocks", headers=bearer(me), params={"cursor": cursor})
    assert_problem(r, 400)
