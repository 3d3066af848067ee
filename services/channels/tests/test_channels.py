"""POST/GET/PUT /api/channels: creation, slugs, lookups, edits and the directory."""

import uuid


async def test_create_derives_slug_answers_the_channel_and_announces_it(client, make_user, problem, published,
                                                                       eventually):
    alice = make_user("alice")
    r = await client.post("/api/channels", headers=alice.headers, json={
        "name": "  Café Live! ", "description": "Coffee\nand code", "category": "just-chatting",
        "tags": ["coffee", "Code", "code"], "isPublic": True})
    assert r.status_code == 201, r.text
    ch = r.json()
    assert ch["slug"] == "cafe-live" and ch["name"] == "Café Live!"
    assert ch["tags"] == ["coffee", "Code"]  # duplicates dropped case-insensitively, order kept
    assert ch["ownerId"] == alice.id and ch["followerCount"] == 0 and ch["viewCount"] == 0
    assert ch["isLive"] is False and ch["liveStreamId"] is None and ch["avatar"] is None and ch["banner"] is None
    assert ch["createdAt"].endswith("Z")
    # the creator card falls back to what the token says until auth's event arrives
    assert ch["creator"] == {"id": alice.id, "username": "alice", "displayName": None, "avatar": None}
    assert "streamKey" not in r.text and "stream_key" not in r.text

    created = await eventually(lambda: published("channel.created"), message="channel.created published")
    data = created[0].data
    assert (data.id, data.slug, data.owner_id, data.tags) == (ch["id"], "cafe-live", alice.id, ["coffee", "Code"])
    assert created[0].source == "channels" and created[0].subject == ch["id"]


async def test_create_refusals(client, make_user, create_channel, problem, mint):
    alice, bob = make_user(), make_user()
    problem(await client.post("/api/channels", json={"name": "x"}), 401)
    problem(await client.post("/api/channels", json={"name": "x"}, headers={"Authorization": "Bearer nope"}), 401)
    problem(await client.post("/api/channels", json={"name": "x"}, headers={"Authorization": "Token abc"}), 401)
    # a validly signed token whose subject is not a user id of ours
    odd = {"Authorization": f"Bearer {mint('not-a-uuid', 'odd')}"}
    problem(await client.post("/api/channels", json={"name": "x"}, headers=odd), 401)
    expired = {"Authorization": f"Bearer {mint(alice.id, 'a', exp=1, iat=0)}"}
    problem(await client.post("/api/channels", json={"name": "x"}, headers=expired), 401)
    await create_channel(alice, "First", slug="taken-slug")
    # slug taken (the limit of channels per owner: test_several_channels.py), explicit or derived
    body = problem(await client.post("/api/channels", json={"name": "B", "slug": "taken-slug"},
                                     headers=bob.headers), 409)
    assert body["errors"][0]["field"] == "slug"
    problem(await client.post("/api/channels", json={"name": "Taken Slug"}, headers=bob.headers), 409)
    # invalid input: 422 with field errors
    for bad in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 81}, {"name": "a\u0000b"},
                {"name": "ok", "slug": "Upper-Case"}, {"name": "ok", "slug": "ab"}, {"name": "ok", "slug": "a" * 41},
                {"name": "ok", "slug": "-edge-"}, {"name": "ok", "slug": "sp ace"}, {"name": "ok", "slug": "a/b"},
                {"name": "ok", "slug": str(uuid.uuid4())}, {"name": "ok", "description": "d" * 2001},
                {"name": "ok", "tags": [f"t{i}" for i in range(11)]}, {"name": "ok", "tags": ["x" * 26]},
                {"name": "ok", "tags": [""]}, {"name": "ok", "category": "Not A Slug"},
                {"name": "ok", "isPublic": "maybe"}):
        body = problem(await client.post("/api/channels", json=bad, headers=bob.headers), 422)
        assert body["errors"], bad
    # nothing was created for bob along the way
    r = await client.get(f"/api/channels?owner={bob.id}", headers=bob.headers)
    assert r.json()["items"] == []


async def test_slug_derivation_edge_cases(client, make_user, create_channel):
    short = await create_channel(make_user(), "日本")  # nothing Latin left: random suffix
    assert short["slug"].startswith("channel-") and 3 <= len(short["slug"]) <= 40
    long = await create_channel(make_user(), "A" * 80)
    assert long["slug"] == "a" * 40
    punct = await create_channel(make_user(), "--Hello,   World!!--")
    assert punct["slug"] == "hello-world"


async def test_get_by_slug_or_id_with_creator_and_caller_flags(client, make_user, create_channel, problem):
    alice, bob = make_user("alice"), make_user("bob")
    ch = await create_channel(alice, "Alice", isPublic=False)
    by_slug = (await client.get("/api/channels/alice")).json()
    by_id = (await client.get(f"/api/channels/{ch['id']}")).json()
    assert by_slug == by_id
    for key in ("id", "slug", "name", "description", "category", "tags", "avatar", "banner", "isPublic",
                "followerCount", "viewCount", "isLive", "liveStreamId", "creator"):
        assert key in by_slug
    assert by_slug["isPublic"] is False  # unlisted, still reachable by its slug
    assert by_slug["isFollowing"] is False and by_slug["canModerate"] is False
    owner_view = (await client.get("/api/channels/alice", headers=alice.headers)).json()
    assert owner_view["canModerate"] is True
    assert (await client.post(f"/api/channels/{ch['id']}/follow", headers=bob.headers)).status_code == 204
    bob_view = (await client.get("/api/channels/alice", headers=bob.headers)).json()
    assert bob_view["isFollowing"] is True and bob_view["canModerate"] is False
    problem(await client.get("/api/channels/no-such-channel"), 404)
    problem(await client.get(f"/api/channels/{uuid.uuid4()}"), 404)
    problem(await client.get("/api/channels/alice", headers={"Authorization": "Bearer garbage"}), 401)


async def test_update(client, make_user, create_channel, problem, published, eventually, channels_app):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice, "Alice", description="old", category="music", tags=["a"])
    await create_channel(bob, "Bob", slug="bobs")
    url = f"/api/channels/{ch['id']}"

    r = await client.put(url, headers=alice.headers, json={"name": "Alice 2", "slug": "alice-two", "tags": ["x", "y"],
                                                           "isPublic": False, "description": None})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["slug"], body["tags"], body["isPublic"]) == ("Alice 2", "alice-two", ["x", "y"], False)
    assert body["description"] is None and body["category"] == "music"  # untouched fields keep their value
    assert (await client.get("/api/channels/alice-two")).status_code == 200
    assert (await client.get("/api/channels/alice")).status_code == 404

    updated = await eventually(lambda: published("channel.updated"), message="channel.updated published")
    assert updated[-1].data.slug == "alice-two" and updated[-1].data.is_public is False

    # own media URLs only for avatar/banner; an image stored elsewhere (the owner's avatar) is copied
    # under the channel's own prefix (auth deletes its avatars once no user shows them)
    await channels_app.state.runtime.store.put("avatars/x/abc.webp", b"RIFF....WEBP", "image/webp")
    r = await client.put(url, headers=alice.headers, json={"avatar": "/media/avatars/x/abc.webp"})
    assert r.status_code == 200 and r.json()["avatar"] == f"/media/channel-avatars/{ch['id']}/abc.webp"
    assert await channels_app.state.runtime.store.get(f"channel-avatars/{ch['id']}/abc.webp") == b"RIFF....WEBP"
    for bad in ("https://evil.example/pixel.gif", "/media/../etc/passwd", "javascript:alert(1)",
                "/media/avatars/x/missing.webp", f"/media/vod/{ch['id']}.mp4"):
        problem(await client.put(url, headers=alice.headers, json={"avatar": bad}), 422)
    assert (await client.put(url, headers=alice.headers, json={"avatar": None})).json()["avatar"] is None

    # refusals
    problem(await client.put(url, json={"name": "x"}), 401)
    problem(await client.put(url, headers=bob.headers, json={"name": "mine now"}), 403)
    problem(await client.put(f"/api/channels/{uuid.uuid4()}", headers=alice.headers, json={"name": "x"}), 404)
    problem(await client.put("/api/channels/not-an-id", headers=alice.headers, json={"name": "x"}), 404)
    problem(await client.put(url, headers=alice.headers, json={"slug": "bobs"}), 409)
    for bad in ({"name": None}, {"slug": None}, {"isPublic": None}, {"tags": None}, {"slug": "BAD"},
                {"name": ""}, {"tags": ["t"] * 11}, {"description": "d" * 2001}):
        problem(await client.put(url, headers=alice.headers, json=bad), 422)

    # an edit that changes nothing publishes nothing
    before = len(await published("channel.updated"))
    assert (await client.put(url, headers=alice.headers, json={"name": "Alice 2"})).status_code == 200
    assert len(await published("channel.updated")) == before


async def test_directory_filters_search_privacy_and_pages(client, make_user, create_channel, problem):
    users = [make_user() for _ in range(5)]
    a = await create_channel(users[0], "Speedrun Central", category="games", description="Any% routes")
    b = await create_channel(users[1], "Jazz Nights", category="music")
    c = await create_channel(users[2], "Lo-fi beats", category="music", description="100% chill")
    hidden = await create_channel(users[3], "Secret Lab", isPublic=False)
    d = await create_channel(users[4], "Speedy Cooking", category="food")

    def ids(r):
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    everything = ids(await client.get("/api/channels"))
    assert everything == [d["id"], c["id"], b["id"], a["id"]]  # newest first when nobody is live
    assert hidden["id"] not in everything
    # the owner sees their unlisted channel, nobody else does
    assert hidden["id"] in ids(await client.get("/api/channels", headers=users[3].headers))
    assert hidden["id"] not in ids(await client.get("/api/channels", headers=users[0].headers))
    assert ids(await client.get(f"/api/channels?owner={users[3].id}", headers=users[3].headers)) == [hidden["id"]]
    assert ids(await client.get(f"/api/channels?owner={users[3].id}")) == []

    assert ids(await client.get("/api/channels?category=music")) == [c["id"], b["id"]]
    assert ids(await client.get("/api/channels?q=SPEED")) == [d["id"], a["id"]]  # name, case-insensitive
    assert ids(await client.get("/api/channels?q=lo-fi")) == [c["id"]]  # slug
    assert ids(await client.get("/api/channels?q=100%25")) == [c["id"]]  # '%' is literal, not a wildcard
    assert ids(await client.get("/api/channels?q=_")) == []
    assert ids(await client.get("/api/channels?live=true")) == []
    assert len(ids(await client.get("/api/channels?live=false"))) == 4

    # pages: limit, cursor, clamp
    first = await client.get("/api/channels?limit=3")
    assert len(first.json()["items"]) == 3 and first.json()["nextCursor"]
    second = await client.get(f"/api/channels?limit=3&cursor={first.json()['nextCursor']}")
    assert ids(second) == [a["id"]] and second.json()["nextCursor"] is None
    big = await client.get("/api/channels?limit=100000")
    assert len(big.json()["items"]) == 4 and big.json()["nextCursor"] is None
    problem(await client.get("/api/channels?limit=0"), 422)
    problem(await client.get("/api/channels?cursor=!!!"), 400)
    problem(await client.get("/api/channels?cursor=eyJ4IjoxfQ"), 400)  # valid base64 JSON, wrong shape
    problem(await client.get("/api/channels?owner=not-a-uuid"), 422)
    problem(await client.get("/api/channels?live=perhaps"), 422)


async def test_hostile_input_is_refused_not_crashed(client, make_user, create_channel, problem, published,
                                                    eventually):
    alice = make_user()
    ch = await create_channel(alice)
    # NUL and other controls: PostgreSQL refuses them in text, so they must never reach a query
    problem(await client.get("/api/channels/%00"), 404)
    problem(await client.get("/api/channels/a%00b"), 404)
    problem(await client.get("/api/channels?q=%00"), 422)
    problem(await client.get("/api/channels?category=%00"), 422)
    problem(await client.get("/api/channels?q=" + "x" * 101), 422)
    for field in ("avatar", "banner"):
        problem(await client.put(f"/api/channels/{ch['id']}", headers=alice.headers,
                                 json={field: "/media/a\u0000b.webp"}), 422)
    problem(await client.put(f"/api/channels/{ch['id']}", headers=alice.headers, json={"tags": ["a\u0000"]}), 422)
    problem(await client.post(f"/api/channels/{ch['id']}/bans", headers=alice.headers,
                              json={"userId": str(ch["ownerId"]), "reason": "\u0000"}), 422)
    problem(await client.put(f"/api/channels/{ch['id']}", headers=alice.headers, content=b"{not json",
                             ), 422)
    # refused requests staged nothing: the only event is the creation
    await eventually(lambda: published("channel.created"), message="channel.created")
    assert [e.type for e in await published()] == ["channel.created"]


async def test_health_and_openapi(client):
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    doc = (await client.get("/openapi.json")).json()
    assert doc["info"]["title"] == "Channels service"
    assert "/api/upload/banner" in doc["paths"] and "/api/channels/{channel_id}/stream-key/rotate" in doc["paths"]
