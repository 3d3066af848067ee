"""Filters, moderators and bans: who may do what, validation, and the events chat listens to."""

import uuid
from datetime import UTC, datetime


async def test_filters(client, make_user, create_channel, problem, published, eventually):
    alice, mod, bob = make_user(), make_user(), make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/filters"
    assert (await client.put(f"/api/channels/{ch['id']}/moderators/{mod.id}", headers=alice.headers)).status_code == 204

    r = await client.get(url, headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == {"bannedWords": [], "profanityFilter": False, "slowModeSeconds": 0, "followersOnly": False,
                        "subscribersOnly": False}

    r = await client.put(url, headers=alice.headers, json={
        "bannedWords": [" Spoiler ", "spoiler", "Scam"], "profanityFilter": True, "slowModeSeconds": 30,
        "followersOnly": True, "subscribersOnly": True})
    assert r.status_code == 200, r.text
    assert r.json() == {"bannedWords": ["spoiler", "scam"], "profanityFilter": True, "slowModeSeconds": 30,
                        "followersOnly": True, "subscribersOnly": True}
    # a moderator may change them too; fields left out keep their value
    r = await client.put(url, headers=mod.headers, json={"slowModeSeconds": 0})
    assert r.status_code == 200 and r.json()["slowModeSeconds"] == 0 and r.json()["followersOnly"] is True
    assert (await client.get(url, headers=mod.headers)).json() == r.json()

    events = await eventually(lambda: published("channel.filters_updated"), message="filters published")
    await eventually(lambda: len(events) == 2 or published("channel.filters_updated"))
    last = (await published("channel.filters_updated"))[-1].data
    assert (last.channel_id, last.banned_words, last.slow_mode_seconds, last.followers_only,
            last.subscribers_only) == (ch["id"], ["spoiler", "scam"], 0, True, True)

    problem(await client.get(url), 401)
    problem(await client.put(url, json={}), 401)
    problem(await client.get(url, headers=bob.headers), 403)
    problem(await client.put(url, headers=bob.headers, json={"followersOnly": False}), 403)
    problem(await client.get(f"/api/channels/{uuid.uuid4()}/filters", headers=alice.headers), 404)
    problem(await client.put("/api/channels/xyz/filters", headers=alice.headers, json={}), 404)
    for bad in ({"slowModeSeconds": -1}, {"slowModeSeconds": 3601}, {"bannedWords": ["w"] * 201},
                {"bannedWords": ["x" * 51]}, {"bannedWords": [""]}, {"bannedWords": "spoiler"},
                {"profanityFilter": None}, {"followersOnly": "yes"}, {"subscribersOnly": None},
                {"subscribersOnly": 1}):
        body = problem(await client.put(url, headers=alice.headers, json=bad), 422)
        assert body["errors"], bad


async def test_moderators(client, make_user, create_channel, problem, published, eventually):
    alice, mod, bob = make_user("alice"), make_user("moddy"), make_user()
    ch = await create_channel(alice)
    base = f"/api/channels/{ch['id']}/moderators"

    for _ in range(2):  # idempotent
        assert (await client.put(f"{base}/{mod.id}", headers=alice.headers)).status_code == 204
    listed = (await client.get(base, headers=alice.headers)).json()
    assert [m["user"]["id"] for m in listed] == [mod.id] and listed[0]["addedAt"].endswith("Z")
    assert (await client.get(base, headers=mod.headers)).status_code == 200
    view = (await client.get(f"/api/channels/{ch['id']}", headers=mod.headers)).json()
    assert view["canModerate"] is True

    # only the owner appoints or removes moderators
    problem(await client.put(f"{base}/{bob.id}", headers=mod.headers), 403)
    problem(await client.delete(f"{base}/{mod.id}", headers=mod.headers), 403)
    problem(await client.put(f"{base}/{bob.id}"), 401)
    problem(await client.get(base, headers=bob.headers), 403)
    problem(await client.put(f"{base}/{alice.id}", headers=alice.headers), 422)  # the owner is one already
    problem(await client.put(f"{base}/not-a-user", headers=alice.headers), 404)
    problem(await client.delete(f"{base}/not-a-user", headers=alice.headers), 404)
    problem(await client.put(f"/api/channels/{uuid.uuid4()}/moderators/{mod.id}", headers=alice.headers), 404)

    for _ in range(2):
        assert (await client.delete(f"{base}/{mod.id}", headers=alice.headers)).status_code == 204
    assert (await client.get(base, headers=alice.headers)).json() == []
    problem(await client.get(f"/api/channels/{ch['id']}/filters", headers=mod.headers), 403)

    added = await eventually(lambda: published("channel.moderator_added"), message="moderator_added")
    removed = await eventually(lambda: published("channel.moderator_removed"), message="moderator_removed")
    assert [(e.data.channel_id, e.data.user_id) for e in added] == [(ch["id"], mod.id)]
    assert [(e.data.channel_id, e.data.user_id) for e in removed] == [(ch["id"], mod.id)]


async def test_bans(client, make_user, create_channel, problem, published, eventually):
    alice, mod, mod2, bob, carol = (make_user() for _ in range(5))
    ch = await create_channel(alice)
    bans = f"/api/channels/{ch['id']}/bans"
    for m in (mod, mod2):
        await client.put(f"/api/channels/{ch['id']}/moderators/{m.id}", headers=alice.headers)

    r = await client.post(bans, headers=mod.headers, json={"userId": bob.id, "durationSeconds": 600,
                                                            "reason": "spam"})
    assert r.status_code == 201, r.text
    ban = r.json()
    assert (ban["userId"], ban["channelId"], ban["reason"], ban["bannedBy"]) == (bob.id, ch["id"], "spam", mod.id)
    until = datetime.fromisoformat(ban["until"])
    assert 590 < (until - datetime.now(UTC)).total_seconds() <= 600 and ban["user"]["id"] == bob.id

    r = await client.post(bans, headers=alice.headers, json={"userId": carol.id})  # permanent
    assert r.status_code == 201 and r.json()["until"] is None and r.json()["reason"] is None
    listed = await client.get(bans, headers=mod.headers)
    assert listed.status_code == 200
    assert [b["userId"] for b in listed.json()["items"]] == [carol.id, bob.id]
    page = (await client.get(f"{bans}?limit=1", headers=alice.headers)).json()
    assert len(page["items"]) == 1 and page["nextCursor"]
    rest = (await client.get(f"{bans}?limit=1&cursor={page['nextCursor']}", headers=alice.headers)).json()
    assert [b["userId"] for b in rest["items"]] == [bob.id] and rest["nextCursor"] is None

    banned = await eventually(lambda: published("channel.user_banned"), message="user_banned")
    await eventually(lambda: len(banned) == 2 or published("channel.user_banned"))
    events = {e.data.user_id: e.data for e in await published("channel.user_banned")}
    assert events[bob.id].until is not None and events[bob.id].reason == "spam"
    assert events[carol.id].until is None

    # refusals
    problem(await client.post(bans, json={"userId": bob.id}), 401)
    problem(await client.post(bans, headers=bob.headers, json={"userId": carol.id}), 403)
    problem(await client.get(bans, headers=bob.headers), 403)
    problem(await client.get(bans), 401)
    problem(await client.post(bans, headers=mod.headers, json={"userId": alice.id}), 422)  # the owner
    problem(await client.post(bans, headers=mod.headers, json={"userId": mod.id}), 422)  # yourself
    problem(await client.post(bans, headers=mod.headers, json={"userId": mod2.id}), 403)  # a fellow moderator
    problem(await client.post(f"/api/channels/{uuid.uuid4()}/bans", headers=alice.headers,
                              json={"userId": bob.id}), 404)
    for bad in ({}, {"userId": "not-a-uuid"}, {"userId": bob.id, "durationSeconds": 0},
                {"userId": bob.id, "durationSeconds": 10**9}, {"userId": bob.id, "reason": "r" * 501}):
        problem(await client.post(bans, headers=alice.headers, json=bad), 422)
    # the owner can ban a moderator
    assert (await client.post(bans, headers=alice.headers, json={"userId": mod2.id})).status_code == 201

    # unban: idempotent, announced once
    for _ in range(2):
        assert (await client.delete(f"{bans}/{bob.id}", headers=mod.headers)).status_code == 204
    problem(await client.delete(f"{bans}/{carol.id}", headers=bob.headers), 403)
    problem(await client.delete(f"{bans}/{carol.id}"), 401)
    problem(await client.delete(f"{bans}/nobody", headers=alice.headers), 404)
    listed = (await client.get(bans, headers=alice.headers)).json()
    assert sorted(b["userId"] for b in listed["items"]) == sorted([carol.id, mod2.id])
    unbanned = await eventually(lambda: published("channel.user_unbanned"), message="user_unbanned")
    assert [(e.data.channel_id, e.data.user_id) for e in unbanned] == [(ch["id"], bob.id)]


async def test_expired_timeouts_are_not_listed(client, make_user, create_channel, sql, problem):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice)
    problem(await client.get(f"/api/channels/{ch['id']}/bans?cursor=eyJ4IjoxfQ", headers=alice.headers), 400)
    # a channel whose filters row is missing answers (and stores) the defaults
    await sql("delete from channel_filters")
    r = await client.get(f"/api/channels/{ch['id']}/filters", headers=alice.headers)
    assert r.json() == {"bannedWords": [], "profanityFilter": False, "slowModeSeconds": 0, "followersOnly": False,
                        "subscribersOnly": False}
    await client.post(f"/api/channels/{ch['id']}/bans", headers=alice.headers,
                      json={"userId": bob.id, "durationSeconds": 60})
    await sql("update channel_bans set until = now() - interval '1 second'")
    r = await client.get(f"/api/channels/{ch['id']}/bans", headers=alice.headers)
    assert r.json() == {"items": [], "nextCursor": None}
