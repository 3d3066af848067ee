"""The routes of API.md's Streams section (and GET /api/channels/{id}/streams): success and errors."""

import uuid

import pytest


@pytest.fixture
def owner_and_channel(make_user, make_channel):
    async def _make(name: str | None = None):
        owner = make_user()
        return owner, await make_channel(owner, name)

    return _make


@pytest.fixture
def live(ingest, live_stream_of):
    """Connect an encoder to the channel and wait for its LIVE stream: (stream, ingest session id)."""

    async def _live(channel_id: str):
        session_id = await ingest(channel_id).connect()
        return await live_stream_of(channel_id), session_id

    return _live


# ---- POST /api/streams ---------------------------------------------------------------------------

async def test_prepare_creates_an_offline_session_and_announces_it(client, owner_and_channel, events):
    owner, channel_id = await owner_and_channel("Cooking")
    r = await client.post("/api/streams", headers=owner.headers,
                          json={"channelId": channel_id, "title": "  Pasta night ",
                                "description": "carbonara"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body.keys() == {"id", "channelId", "title", "description", "status", "startTime", "endTime",
                           "viewerCount", "peakViewers", "duration", "hlsUrl", "thumbnailUrl", "vodUrl",
                           "isArchived", "createdAt"}
    assert body["title"] == "Pasta night" and body["description"] == "carbonara"
    assert body["status"] == "OFFLINE" and body["viewerCount"] == 0 and body["peakViewers"] == 0
    assert body["startTime"] is None and body["hlsUrl"] is None and body["isArchived"] is False
    assert body["createdAt"].endswith("Z")
    [published] = await events.wait_for(lambda p: len(p) >= 1, what="stream.created")
    assert published.subject == "stream.created"
    assert published.event.data.id == body["id"] and published.event.data.status == "OFFLINE"
    assert published.event.subject == body["id"] and published.event.source == "streams"


async def test_preparing_again_updates_the_prepared_session(client, owner_and_channel):
    owner, channel_id = await owner_and_channel()
    first = await client.post("/api/streams", headers=owner.headers,
                              json={"channelId": channel_id, "title": "A"})
    again = await client.post("/api/streams", headers=owner.headers,
                              json={"channelId": channel_id, "title": "B"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["title"] == "B"


async def test_prepare_errors(client, owner_and_channel, make_user, assert_problem, live):
    owner, channel_id = await owner_and_channel()
    body = {"channelId": channel_id, "title": "t"}
    assert_problem(await client.post("/api/streams", json=body), 401)
    assert_problem(await client.post("/api/streams", json=body,
                                     headers={"Authorization": "Bearer nope"}), 401)
    assert_problem(await client.post("/api/streams", json=body, headers=make_user().headers), 403)
    assert_problem(await client.post("/api/streams", json={**body, "channelId": str(uuid.uuid4())},
                                     headers=owner.headers), 404)
    assert_problem(await client.post("/api/streams", json={**body, "channelId": "bad\x00id"},
                                     headers=owner.headers), 404)
    for bad in ({"channelId": channel_id}, {**body, "title": "   "}, {**body, "title": "x" * 141},
                {**body, "title": "two\nlines"}, {**body, "description": "nul\x00"}, {"title": "t"}):
        assert_problem(await client.post("/api/streams", json=bad, headers=owner.headers), 422)
    await live(channel_id)
    problem = assert_problem(await client.post("/api/streams", json=body, headers=owner.headers), 409)
    assert "live" in problem["detail"].lower()


# ---- POST /api/streams/{channelId}/start -----------------------------------------------------------

async def test_go_live_creates_the_session_titled_from_the_channel(client, owner_and_channel, events,
                                                                   outbox_drained):
    owner, channel_id = await owner_and_channel("Night Owls")
    r = await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)
    assert r.status_code == 200, r.text
    stream = r.json()
    assert stream["status"] == "OFFLINE" and stream["title"] == "Night Owls"
    # the same session again (no second one), with the title given this time
    r = await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers,
                          json={"title": "Late show", "description": "d"})
    assert r.status_code == 200
    again = r.json()
    assert again["id"] == stream["id"] and again["title"] == "Late show" and again["description"] == "d"
    await outbox_drained()
    assert len(await events.of_type("stream.created")) == 1


async def test_go_live_returns_the_prepared_or_the_live_session(client, owner_and_channel, live):
    owner, channel_id = await owner_and_channel()
    prepared = (await client.post("/api/streams", headers=owner.headers,
                                  json={"channelId": channel_id, "title": "Prepared"})).json()
    r = await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers, json={})
    assert r.json()["id"] == prepared["id"] and r.json()["title"] == "Prepared"
    stream, _ = await live(channel_id)
    assert stream["id"] == prepared["id"]  # the encoder took the prepared session LIVE
    r = await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)
    assert r.status_code == 200 and r.json()["id"] == prepared["id"] and r.json()["status"] == "LIVE"


async def test_go_live_is_live_at_once_when_an_encoder_is_connected(client, owner_and_channel, live, events):
    owner, channel_id = await owner_and_channel()
    first, session_id = await live(channel_id)
    # the creator ends it but the encoder stays connected (the media gateway has not dropped it)
    assert (await client.post(f"/api/streams/{first['id']}/end", headers=owner.headers)).status_code == 202
    r = await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers, json={"title": "Again"})
    assert r.status_code == 200
    second = r.json()
    assert second["id"] != first["id"] and second["status"] == "LIVE" and second["title"] == "Again"
    assert second["hlsUrl"] == f"http://localhost:8080/hls/{session_id}/index.m3u8"
    assert second["startTime"] is not None
    await events.wait_for(lambda p: any(x.subject == "stream.started" and x.event.data.id == second["id"]
                                        for x in p), what="stream.started of the second stream")


async def test_go_live_errors(client, owner_and_channel, make_user, assert_problem):
    owner, channel_id = await owner_and_channel()
    assert_problem(await client.post(f"/api/streams/{channel_id}/start"), 401)
    assert_problem(await client.post(f"/api/streams/{channel_id}/start", headers=make_user().headers), 403)
    assert_problem(await client.post(f"/api/streams/{uuid.uuid4()}/start", headers=owner.headers), 404)
    assert_problem(await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers,
                                     json={"title": ""}), 422)
    assert_problem(await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers,
                                     json=["not", "an", "object"]), 422)


# ---- GET /api/streams/{id} and /hls ---------------------------------------------------------------

async def test_get_stream_is_public_and_404s(client, owner_and_channel, assert_problem):
    owner, channel_id = await owner_and_channel()
    stream = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)).json()
    r = await client.get(f"/api/streams/{stream['id']}")  # no token needed
    assert r.status_code == 200 and r.json()["id"] == stream["id"]
    assert_problem(await client.get(f"/api/streams/{uuid.uuid4()}"), 404)
    assert_problem(await client.get("/api/streams/not-an-id"), 404)


async def test_hls_only_while_live(client, owner_and_channel, live, assert_problem):
    owner, channel_id = await owner_and_channel()
    prepared = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)).json()
    problem = assert_problem(await client.get(f"/api/streams/{prepared['id']}/hls"), 409)
    assert "OFFLINE" in problem["detail"]
    stream, session_id = await live(channel_id)
    r = await client.get(f"/api/streams/{stream['id']}/hls")
    assert r.status_code == 200
    assert r.json() == {"url": f"http://localhost:8080/hls/{session_id}/index.m3u8"}
    await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    assert_problem(await client.get(f"/api/streams/{stream['id']}/hls"), 409)
    assert_problem(await client.get(f"/api/streams/{uuid.uuid4()}/hls"), 404)


# ---- POST /api/streams/{id}/end -------------------------------------------------------------------

async def test_end_a_live_stream(client, owner_and_channel, live, events, outbox_drained):
    owner, channel_id = await owner_and_channel()
    stream, _ = await live(channel_id)
    r = await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    assert r.status_code == 202, r.text
    ended = r.json()
    assert ended["status"] == "ENDING" and ended["hlsUrl"] is None and ended["viewerCount"] == 0
    assert ended["endTime"] is not None and isinstance(ended["duration"], int) and ended["duration"] >= 0
    published = await events.wait_for(lambda p: any(x.subject == "stream.end_requested" for x in p),
                                      what="stream.end_requested")
    [request] = [p.event for p in published if p.subject == "stream.end_requested"]
    assert request.data.stream_id == stream["id"] and request.data.channel_id == channel_id
    await outbox_drained()
    changed = [p.event.data for p in await events.all() if p.subject == "stream.status_changed"]
    assert [(c.previous_status, c.status) for c in changed] == [("OFFLINE", "LIVE"), ("LIVE", "ENDING")]
    # again while ENDING: accepted, nothing new
    r = await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    assert r.status_code == 202 and r.json()["status"] == "ENDING"


async def test_ending_a_session_that_never_went_live_archives_it(client, owner_and_channel, assert_problem,
                                                                  events, outbox_drained):
    owner, channel_id = await owner_and_channel()
    prepared = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)).json()
    r = await client.post(f"/api/streams/{prepared['id']}/end", headers=owner.headers)
    assert r.status_code == 202
    assert r.json()["status"] == "ARCHIVED" and r.json()["vodUrl"] is None and r.json()["isArchived"] is False
    assert r.json()["duration"] is None and r.json()["startTime"] is None
    assert_problem(await client.post(f"/api/streams/{prepared['id']}/end", headers=owner.headers), 409)
    await outbox_drained()
    subjects = [p.subject for p in await events.all()]
    assert "stream.archived" in subjects
    assert "stream.end_requested" not in subjects and "stream.ended" not in subjects  # nothing was live
    # the next Go live makes a new session
    again = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)).json()
    assert again["id"] != prepared["id"] and again["status"] == "OFFLINE"


async def test_end_errors(client, owner_and_channel, make_user, assert_problem):
    owner, channel_id = await owner_and_channel()
    stream = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)).json()
    assert_problem(await client.post(f"/api/streams/{stream['id']}/end"), 401)
    assert_problem(await client.post(f"/api/streams/{stream['id']}/end", headers=make_user().headers), 403)
    assert_problem(await client.post(f"/api/streams/{uuid.uuid4()}/end", headers=owner.headers), 404)
    assert (await client.get(f"/api/streams/{stream['id']}")).json()["status"] == "OFFLINE"


# ---- PUT /api/streams/{id}/status ----------------------------------------------------------------

async def test_status_changes_follow_the_table(client, owner_and_channel, live, assert_problem, events):
    owner, channel_id = await owner_and_channel()
    prepared = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)).json()
    url = f"/api/streams/{prepared['id']}/status"
    # no encoder: cannot be LIVE; never straight to ARCHIVED
    assert "encoder" in assert_problem(await client.put(url, headers=owner.headers, json={"status": "LIVE"}),
                                       409)["detail"]
    assert_problem(await client.put(url, headers=owner.headers, json={"status": "ARCHIVED"}), 409)
    r = await client.put(url, headers=owner.headers, json={"status": "OFFLINE"})  # what it already is
    assert r.status_code == 200 and r.json()["status"] == "OFFLINE"

    stream, _ = await live(channel_id)
    assert stream["id"] == prepared["id"]
    assert_problem(await client.put(url, headers=owner.headers, json={"status": "OFFLINE"}), 409)
    r = await client.put(url, headers=owner.headers, json={"status": "ENDING"})
    assert r.status_code == 200 and r.json()["status"] == "ENDING"
    await events.wait_for(lambda p: any(x.subject == "stream.end_requested" for x in p))
    assert_problem(await client.put(url, headers=owner.headers, json={"status": "LIVE"}), 409)
    # give up waiting for the recording
    r = await client.put(url, headers=owner.headers, json={"status": "ARCHIVED"})
    assert r.status_code == 200 and r.json()["status"] == "ARCHIVED" and r.json()["vodUrl"] is None
    for status in ("OFFLINE", "LIVE", "ENDING"):
        problem = assert_problem(await client.put(url, headers=owner.headers, json={"status": status}), 409)
        assert "backwards" in problem["detail"]


async def test_status_goes_live_when_an_encoder_is_connected(client, owner_and_channel, live):
    owner, channel_id = await owner_and_channel()
    first, session_id = await live(channel_id)
    await client.post(f"/api/streams/{first['id']}/end", headers=owner.headers)
    prepared = (await client.post("/api/streams", headers=owner.headers,
                                  json={"channelId": channel_id, "title": "manual"})).json()
    assert prepared["status"] == "OFFLINE"
    r = await client.put(f"/api/streams/{prepared['id']}/status", headers=owner.headers,
                         json={"status": "LIVE"})
    assert r.status_code == 200 and r.json()["status"] == "LIVE"
    assert r.json()["hlsUrl"].endswith(f"/{session_id}/index.m3u8")


async def test_status_errors(client, owner_and_channel, make_user, assert_problem):
    owner, channel_id = await owner_and_channel()
    stream = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)).json()
    url = f"/api/streams/{stream['id']}/status"
    assert_problem(await client.put(url, json={"status": "ENDING"}), 401)
    assert_problem(await client.put(url, json={"status": "ENDING"}, headers=make_user().headers), 403)
    assert_problem(await client.put(f"/api/streams/{uuid.uuid4()}/status", json={"status": "ENDING"},
                                    headers=owner.headers), 404)
    for bad in ({"status": "PAUSED"}, {"status": "live"}, {}, {"status": None}):
        assert_problem(await client.put(url, json=bad, headers=owner.headers), 422)
    assert (await client.get(f"/api/streams/{stream['id']}")).json()["status"] == "OFFLINE"


# ---- GET /api/channels/{channelId}/streams --------------------------------------------------------

async def test_channel_streams_newest_first_with_cursor_and_status(client, owner_and_channel, make_channel,
                                                                   assert_problem):
    owner, channel_id = await owner_and_channel()
    ids = []
    for n in range(3):  # three sessions, each ended before the next
        stream = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers,
                                    json={"title": f"s{n}"})).json()
        ids.append(stream["id"])
        if n < 2:
            await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    other = await make_channel(owner)
    await client.post(f"/api/streams/{other}/start", headers=owner.headers)

    page = (await client.get(f"/api/channels/{channel_id}/streams")).json()
    assert page.keys() == {"items", "nextCursor"} and page["nextCursor"] is None
    assert [s["id"] for s in page["items"]] == ids[::-1]

    seen, cursor = [], None
    while True:
        r = await client.get(f"/api/channels/{channel_id}/streams",
                             params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        seen += [s["id"] for s in r.json()["items"]]
        cursor = r.json()["nextCursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]

    archived = (await client.get(f"/api/channels/{channel_id}/streams", params={"status": "ARCHIVED"})).json()
    assert [s["id"] for s in archived["items"]] == ids[1::-1]
    offline = (await client.get(f"/api/channels/{channel_id}/streams", params={"status": "OFFLINE"})).json()
    assert [s["id"] for s in offline["items"]] == [ids[2]]
    # larger than 100 is clamped, not refused
    r = await client.get(f"/api/channels/{channel_id}/streams", params={"limit": 1000})
    assert r.status_code == 200 and len(r.json()["items"]) == 3

    assert_problem(await client.get(f"/api/channels/{uuid.uuid4()}/streams"), 404)
    assert_problem(await client.get(f"/api/channels/{channel_id}/streams", params={"status": "NOPE"}), 422)
    assert_problem(await client.get(f"/api/channels/{channel_id}/streams", params={"limit": 0}), 422)
    assert_problem(await client.get(f"/api/channels/{channel_id}/streams",
                                    params={"cursor": "garbage!"}), 400)


async def test_openapi_documents_the_routes(client):
    spec = (await client.get("/openapi.json")).json()
    assert set(spec["paths"]) == {
        "/api/streams", "/api/streams/{channel_id}/start", "/api/streams/{stream_id}",
        "/api/streams/{stream_id}/status", "/api/streams/{stream_id}/end", "/api/streams/{stream_id}/hls",
        "/api/channels/{channel_id}/streams",
        "/api/clips", "/api/clips/{clip_id}", "/api/channels/{channel_id}/clips"}
    assert "Problem" in spec["components"]["schemas"]
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == ["database", "nats", "redis", "tasks"]


# ---- several channels of one creator (API.md Extensions) -------------------------------------------

async def test_one_creator_goes_live_on_two_channels_independently(client, make_user, make_channel, live,
                                                                    get_stream, wait_status):
    owner = make_user()
    first, second = await make_channel(owner, "First of two"), await make_channel(owner, "Second of two")
    a = (await client.post(f"/api/streams/{first}/start", headers=owner.headers)).json()
    b = (await client.post(f"/api/streams/{second}/start", headers=owner.headers, json={"title": "B side"})).json()
    # each channel gets its own session, titled from its own channel
    assert a["id"] != b["id"] and (a["channelId"], b["channelId"]) == (first, second)
    assert (a["title"], b["title"]) == ("First of two", "B side")
    live_a, _ = await live(first)
    live_b, _ = await live(second)
    assert (live_a["id"], live_b["id"]) == (a["id"], b["id"])
    # ending one leaves the other live
    assert (await client.post(f"/api/streams/{a['id']}/end", headers=owner.headers)).status_code == 202
    await wait_status(a["id"], "ENDING")
    assert (await get_stream(b["id"]))["status"] == "LIVE"
    listed = (await client.get(f"/api/channels/{second}/streams")).json()["items"]
    assert [s["id"] for s in listed] == [b["id"]]
    # and nobody else may start either
    stranger = make_user()
    for channel_id in (first, second):
        r = await client.post(f"/api/streams/{channel_id}/start", headers=stranger.headers)
        assert r.status_code == 403, r.text
