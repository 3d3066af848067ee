"""The durable consumers: user profiles for creator cards, stream events for isLive, viewer
counts, viewCount and VODs. Events go into JetStream exactly as the other services' relays send them."""

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from contracts.envelope import make_event
from contracts.events.streams import Stream, StreamStatus, StreamViewers
from contracts.events.users import UserProfile


def stream(channel_id: str, stream_id: str | None = None, *, status=StreamStatus.LIVE, started=None, **extra):
    now = datetime.now(UTC)
    values = {"id": stream_id or str(uuid.uuid4()), "channel_id": channel_id, "title": "Speedrun", "description": None,
                  "status": status, "start_time": started or now, "end_time": None, "viewer_count": 0, "peak_viewers": 0,
                  "duration": None, "hls_url": None, "thumbnail_url": None, "vod_url": None, "is_archived": False,
                  "created_at": now}
    values.update(extra)
    return Stream(**values)


def processed(consumer: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("inbox_processed_total", {"consumer": consumer, "outcome": outcome}) or 0.0


async def test_user_events_fill_the_creator_card(client, make_user, create_channel, send_event, eventually, sql):
    alice = make_user("alice")
    await create_channel(alice, slug="alices")

    async def creator():
        return (await client.get("/api/channels/alices")).json()["creator"]

    assert (await creator())["displayName"] is None
    t0 = datetime.now(UTC)
    await send_event("user.registered", UserProfile(user_id=alice.id, username="alice", display_name="Alice A.",
                                                    avatar=None))
    await eventually(lambda: _check(creator, lambda c: c["displayName"] == "Alice A."), message="profile cached")
    newer = make_event("user.updated", UserProfile(user_id=alice.id, username="alice", display_name="Alice B.",
                                                   avatar="/media/avatars/a.webp"), source="auth",
                       time=t0 + timedelta(seconds=10))
    older = make_event("user.updated", UserProfile(user_id=alice.id, username="alice", display_name="Stale",
                                                   avatar=None), source="auth", time=t0 + timedelta(seconds=5))
    await send_event("user.updated", None, envelope=newer)
    await send_event("user.updated", None, envelope=older)  # arrives late: must not win
    await eventually(lambda: _consumed(sql, "channels-user-profiles", older.id), message="late event consumed")
    assert (await creator()) == {"id": alice.id, "username": "alice", "displayName": "Alice B.",
                                 "avatar": "/media/avatars/a.webp"}
    listed = (await client.get("/api/channels")).json()["items"][0]["creator"]
    assert listed["displayName"] == "Alice B."
    stranger = make_user()
    ch = await create_channel(stranger)
    assert (await client.get(f"/api/channels/{ch['id']}")).json()["creator"]["displayName"] is None
    # an id that is not one of auth's UUIDs is consumed without effect (not retried, not dead-lettered)
    odd = await send_event("user.registered", UserProfile(user_id="legacy-42", username="legacy",
                                                          display_name="Legacy", avatar=None))
    await eventually(lambda: _consumed(sql, "channels-user-profiles", odd.id), message="odd id consumed")
    assert (await sql("select count(*) from dead_letters"))[0][0] == 0


async def _check(fetch, predicate):
    return predicate(await fetch())


async def _consumed(sql, consumer: str, event_id: str) -> bool:
    rows = await sql("select 1 from inbox where consumer = :c and event_id = :e", c=consumer, e=event_id)
    return bool(rows)


async def test_stream_lifecycle_drives_is_live_viewers_and_vods(client, make_user, create_channel, send_event,
                                                                eventually, sql, problem):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice, slug="live-one")
    other = await create_channel(bob, slug="offline-one")

    async def channel():
        return (await client.get("/api/channels/live-one")).json()

    live = stream(ch["id"])
    started = await send_event("stream.started", live)
    await eventually(lambda: _check(channel, lambda c: c["isLive"]), message="isLive flipped")
    assert (await channel())["liveStreamId"] == live.id

    # the same event delivered twice (no JetStream dedup header): handled once, acked twice
    dupes = processed("channels-stream-state", "duplicate")
    await send_event("stream.started", None, envelope=started, dedup=False)
    await eventually(lambda: processed("channels-stream-state", "duplicate") == dupes + 1, message="duplicate seen")
    rows = await sql("select count(*) from inbox where event_id = :e", e=started.id)
    assert rows[0][0] == 1

    # viewer counts order the directory: live first, by viewers. They come from VIEWERS
    # (stream.viewers.<streamId>, the latest per stream), and leave no inbox row behind
    viewers = await send_event("stream.viewers", StreamViewers(stream_id=live.id, channel_id=ch["id"], count=42,
                                                               peak=42), subject=f"stream.viewers.{live.id}")
    await eventually(lambda: _check(channel, lambda c: c["viewerCount"] == 42), message="viewers counted")
    assert (await sql("select count(*) from inbox where event_id = :e", e=viewers.id))[0][0] == 0
    order = [i["slug"] for i in (await client.get("/api/channels")).json()["items"]]
    assert order == ["live-one", "offline-one"]
    assert [i["slug"] for i in (await client.get("/api/channels?live=true")).json()["items"]] == ["live-one"]
    # counts for some other stream of the channel, or for a foreign channel id, are ignored
    await send_event("stream.viewers", StreamViewers(stream_id="other", channel_id=ch["id"], count=7, peak=7),
                     subject="stream.viewers.other")
    await send_event("stream.viewers", StreamViewers(stream_id=live.id, channel_id="not-ours", count=9, peak=9),
                     subject=f"stream.viewers.{live.id}")

    # ended: offline, peak added to viewCount once, even if ended and archived both arrive
    ended = stream(ch["id"], live.id, status=StreamStatus.ENDING, peak_viewers=50, end_time=datetime.now(UTC))
    await send_event("stream.ended", ended)
    await eventually(lambda: _check(channel, lambda c: not c["isLive"]), message="isLive back off")
    c = await channel()
    assert c["liveStreamId"] is None and c["viewerCount"] == 0 and c["viewCount"] == 50

    archived = stream(ch["id"], live.id, status=StreamStatus.ARCHIVED, peak_viewers=50, duration=3600,
                      vod_url="/vod/abc/index.m3u8", thumbnail_url="/thumbs/abc.jpg", is_archived=True,
                      end_time=datetime.now(UTC))
    await send_event("stream.archived", archived)
    vods_url = f"/api/channels/{ch['id']}/vod"

    async def vods():
        return (await client.get(vods_url)).json()["items"]

    items = await eventually(vods, message="vod listed")
    assert items == [{"id": live.id, "title": "Speedrun", "vodUrl": "/vod/abc/index.m3u8", "duration": 3600,
                      "startTime": items[0]["startTime"], "endTime": items[0]["endTime"],
                      "thumbnailUrl": "/thumbs/abc.jpg", "archivedAt": items[0]["archivedAt"]}]
    assert items[0]["startTime"].endswith("Z")
    assert (await channel())["viewCount"] == 50

    # a late stream.started for that finished stream must not bring the channel back live
    await send_event("stream.started", stream(ch["id"], live.id))
    second = stream(ch["id"])
    await send_event("stream.started", second)  # a genuinely new stream does
    await eventually(lambda: _check(channel, lambda c: c["liveStreamId"] == second.id), message="second stream")

    # events about unknown channels or with foreign ids are consumed without effect
    await send_event("stream.started", stream(str(uuid.uuid4())))
    await send_event("stream.started", stream("not-a-uuid"))
    await eventually(lambda: _dead_letters(sql, 0))

    # the VOD list: empty for a channel without recordings, 404 for an unknown one, paginated
    assert (await client.get(f"/api/channels/{other['id']}/vod")).json() == {"items": [], "nextCursor": None}
    problem(await client.get(f"/api/channels/{uuid.uuid4()}/vod"), 404)
    problem(await client.get("/api/channels/bad/vod"), 404)
    more = stream(ch["id"], status=StreamStatus.ARCHIVED, vod_url="/vod/second.m3u8")
    await send_event("stream.archived", more)
    await eventually(lambda: _check(vods, lambda v: len(v) == 2), message="second vod")
    page = (await client.get(f"{vods_url}?limit=1")).json()
    assert [v["id"] for v in page["items"]] == [more.id] and page["nextCursor"]
    rest = (await client.get(f"{vods_url}?limit=1&cursor={page['nextCursor']}")).json()
    assert [v["id"] for v in rest["items"]] == [live.id] and rest["nextCursor"] is None
    problem(await client.get(f"{vods_url}?cursor=eyJ4IjoxfQ"), 400)


async def _dead_letters(sql, expected: int) -> bool:
    return (await sql("select count(*) from dead_letters"))[0][0] == expected
