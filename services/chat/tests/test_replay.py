"""Chat replay: a stream's messages by offset window (GET /api/streams/{id}/messages?fromOffset=
&toOffset=), oldest first, deleted ones never, each with offsetSeconds from the stream's start as
chat's replica of the streams service's events has it; from PostgreSQL and from the JetStream tail
the persister has not written yet; and every bad window a 4xx problem+json."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from contracts.events.streams import StreamStatus

# the stream went live this long before the test's messages: their offsets are about this
AGO = 120.0


async def _replay_room(client, make_user, make_channel, moderation_events):
    """A channel whose stream started AGO seconds ago, one message sent before it (no stream),
    five during it 0.25 s apart, the third deleted. -> (stream id, start, the visible four, author)."""
    author = make_user()
    channel_id = await make_channel(make_user())
    before = await client.post("/api/messages", headers=author.headers,
                               json={"channelId": channel_id, "content": "before the stream"})
    assert before.status_code == 201, before.text
    start = datetime.now(UTC) - timedelta(seconds=AGO)
    stream_id = await moderation_events.stream(channel_id, start_time=start)
    sent = []
    for n in range(5):
        r = await client.post(f"/api/streams/{stream_id}/messages", headers=author.headers,
                              json={"content": f"replay {n}"})
        assert r.status_code == 201, r.text
        assert r.json()["streamId"] == stream_id
        sent.append(r.json())
        await asyncio.sleep(0.25)
    assert (await client.delete(f"/api/messages/{sent[2]['id']}", headers=author.headers)).status_code == 204
    return stream_id, start, [m for m in sent if m is not sent[2]], author


def _offset(message: dict, start: datetime) -> float:
    return (datetime.fromisoformat(message["createdAt"]) - start).total_seconds()


async def _check_windows(client, stream_id: str, start: datetime, visible: list[dict]) -> None:
    url = f"/api/streams/{stream_id}/messages"
    ids = [m["id"] for m in visible]

    whole = (await client.get(url, params={"fromOffset": 0, "toOffset": 600})).json()
    assert [m["id"] for m in whole["items"]] == ids  # oldest first, the deleted one and the offline one left out
    assert whole["nextCursor"] is None
    seqs = [m["seq"] for m in whole["items"]]
    assert seqs == sorted(seqs)
    for item in whole["items"]:
        assert item["offsetSeconds"] == pytest.approx(_offset(item, start), abs=0.001)
        assert AGO <= item["offsetSeconds"] < AGO + 30

    # a window between messages: [halfway m0-m1, halfway m3-m4) holds m1 and m3 (m2 is deleted)
    o = [m["offsetSeconds"] for m in whole["items"]]
    inner = (await client.get(url, params={"fromOffset": (o[0] + o[1]) / 2, "toOffset": (o[2] + o[3]) / 2})).json()
    assert [m["id"] for m in inner["items"]] == ids[1:3]
    # a window ending just before a message leaves it out
    upto = (await client.get(url, params={"fromOffset": 0, "toOffset": o[3] - 0.002})).json()
    assert [m["id"] for m in upto["items"]] == ids[:3]
    # before the first message: nothing
    early = (await client.get(url, params={"fromOffset": 0, "toOffset": AGO - 10})).json()
    assert early == {"items": [], "nextCursor": None}

    # a busy window comes in pages that continue with cursor=<nextCursor>
    paged, cursor = [], None
    for _ in range(len(ids) + 1):
        params = {"fromOffset": 0, "toOffset": 600, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, params=params)).json()
        assert len(page["items"]) <= 1
        paged += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [m["id"] for m in paged] == ids

    # the stream's history (paging back by seq) carries the same offsets
    history = (await client.get(url)).json()
    assert [(m["id"], m["offsetSeconds"]) for m in history["items"]] == [(m["id"], m["offsetSeconds"])
                                                                         for m in whole["items"]]


async def test_replay_windows_from_postgres(client, make_user, make_channel, moderation_events, db, eventually):
    from sqlalchemy import text

    stream_id, start, visible, _ = await _replay_room(client, make_user, make_channel, moderation_events)

    async def rows():
        async with db() as session:
            return (await session.exec(text("SELECT count(*), count(deleted_at) FROM chat_messages"))).one()

    # all six messages and the deletion are in PostgreSQL
    await eventually(rows, lambda r: tuple(r) == (6, 1), what="the persister")
    await _check_windows(client, stream_id, start, visible)


@pytest.mark.settings(persister_enabled=False)
async def test_replay_windows_from_the_unpersisted_tail(client, make_user, make_channel, moderation_events, db):
    """No persister: the messages and the deletion are only in JetStream; the windows are the same."""
    from sqlalchemy import text

    stream_id, start, visible, _ = await _replay_room(client, make_user, make_channel, moderation_events)
    async with db() as session:
        assert (await session.exec(text("SELECT count(*) FROM chat_messages"))).one()[0] == 0
    await _check_windows(client, stream_id, start, visible)


async def test_a_message_deleted_later_leaves_the_window(client, make_user, make_channel, moderation_events):
    stream_id, _, visible, author = await _replay_room(client, make_user, make_channel, moderation_events)
    url = f"/api/streams/{stream_id}/messages"
    o = [m["offsetSeconds"] for m in (await client.get(url, params={"fromOffset": 0, "toOffset": 600})).json()["items"]]
    params = {"fromOffset": 0, "toOffset": (o[2] + o[3]) / 2}  # the first three
    assert [m["id"] for m in (await client.get(url, params=params)).json()["items"]] == [m["id"] for m in visible[:3]]
    assert (await client.delete(f"/api/messages/{visible[0]['id']}", headers=author.headers)).status_code == 204
    assert [m["id"] for m in (await client.get(url, params=params)).json()["items"]] == [m["id"] for m in visible[1:3]]


@pytest.mark.settings(replay_max_window_seconds=60)
async def test_bad_windows_are_4xx_problems(client, make_user, make_channel, moderation_events, assert_problem):
    channel_id = await make_channel(make_user())
    stream_id = await moderation_events.stream(channel_id)
    url = f"/api/streams/{stream_id}/messages"
    assert (await client.get(url, params={"fromOffset": 0, "toOffset": 60})).status_code == 200

    cases = [
        ({"fromOffset": 10}, 422, "toOffset"),                       # half a window
        ({"toOffset": 10}, 422, "fromOffset"),
        ({"fromOffset": -1, "toOffset": 10}, 422, "fromOffset"),     # before the start
        ({"fromOffset": "soon", "toOffset": 10}, 422, "fromOffset"),
        ({"fromOffset": "nan", "toOffset": 10}, 422, "fromOffset"),
        ({"fromOffset": 0, "toOffset": "inf"}, 422, "toOffset"),
        ({"fromOffset": 0, "toOffset": 1e12}, 422, "toOffset"),
        ({"fromOffset": 10, "toOffset": 10}, 422, "toOffset"),       # empty
        ({"fromOffset": 20, "toOffset": 10}, 422, "toOffset"),       # backwards
        ({"fromOffset": 0, "toOffset": 60.5}, 422, "toOffset"),      # longer than the setting: refused, not cut
        ({"fromOffset": 0, "toOffset": 10, "before": 5}, 422, "before"),
    ]
    for params, status, field in cases:
        body = assert_problem(await client.get(url, params=params), status)
        assert field in [e["field"] for e in body["errors"]], (params, body)
    too_long = (await client.get(url, params={"fromOffset": 0, "toOffset": 61})).json()
    assert too_long["errors"][0]["type"] == "window_too_large" and "60 seconds" in too_long["detail"]
    assert_problem(await client.get(url, params={"fromOffset": 0, "toOffset": 10, "cursor": "x9"}), 400)
    assert_problem(await client.get("/api/streams/no-such-stream/messages",
                                    params={"fromOffset": 0, "toOffset": 10}), 404)

    # a stream that has not gone live has no start to count from
    waiting = await moderation_events.stream(channel_id, status=StreamStatus.OFFLINE)
    body = assert_problem(await client.get(f"/api/streams/{waiting}/messages",
                                           params={"fromOffset": 0, "toOffset": 10}), 409)
    assert "not gone live" in body["detail"]
