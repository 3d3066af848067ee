"""The event-driven lifecycle: media.* events in (through JetStream), stream.* events out.

The reconnect window is 1 s here (conftest), the sweeper looks every 0.1 s.
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from contracts.events.channels import Channel
from contracts.events.media import IngestConnected, MediaProvider, VodJoined


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_connect_goes_live_and_announces_it(make_user, make_channel, ingest, live_stream_of, events):
    owner = make_user()
    channel_id = await make_channel(owner, "Speedruns")
    at = now() - timedelta(seconds=2)
    session_id = await ingest(channel_id).connect(at=at)
    stream = await live_stream_of(channel_id)
    assert stream["title"] == "Speedruns"  # no prepared session: titled from the channel name
    assert stream["hlsUrl"] == f"http://localhost:8080/hls/{session_id}/index.m3u8"
    assert iso(stream["startTime"]) == at
    # one transaction's events, relayed in the order they were staged
    published = await events.wait_for(lambda p: len(p) >= 3, what="created, status_changed, started")
    subjects = [p.subject for p in published]
    assert subjects == ["stream.created", "stream.status_changed", "stream.started"]
    [started] = [p.event for p in published if p.subject == "stream.started"]
    assert started.data.id == stream["id"] and started.data.status == "LIVE"
    assert started.data.hls_url == stream["hlsUrl"] and started.data.channel_id == channel_id
    [changed] = [p.event for p in published if p.subject == "stream.status_changed"]
    assert (changed.data.previous_status, changed.data.status) == ("OFFLINE", "LIVE")


async def test_live_streams_gauge_counts_live_streams(make_user, make_channel, ingest, live_stream_of, client):
    async def gauge() -> float:
        text = (await client.get("/metrics")).text
        return float(next(line.split()[1] for line in text.splitlines() if line.startswith("streams_live ")))

    for name in ("Gauge one", "Gauge two"):
        channel_id = await make_channel(make_user(), name)
        await ingest(channel_id).connect()
        await live_stream_of(channel_id)
    deadline = asyncio.get_running_loop().time() + 5
    while await gauge() < 2:  # the sweeper sets it every pass (0.1 s here)
        assert asyncio.get_running_loop().time() < deadline, "streams_live never reached 2"
        await asyncio.sleep(0.1)
    assert await gauge() == 2


async def test_reconnect_inside_the_window_continues_the_same_stream(
        make_user, make_channel, ingest, live_stream_of, get_stream, settled, events, outbox_drained):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    first = await media.connect()
    stream = await live_stream_of(channel_id)
    dropped = now()
    await media.disconnect(first, at=dropped)
    second = await media.connect(at=dropped + timedelta(seconds=0.3))
    await settled()
    again = await get_stream(stream["id"])
    assert again["status"] == "LIVE" and again["startTime"] == stream["startTime"]
    assert again["hlsUrl"] == f"http://localhost:8080/hls/{second}/index.m3u8"  # the new connection's
    # pages are told about the new playlist; still one stream on the channel
    await outbox_drained()
    assert len(await events.of_type("stream.started")) == 2
    assert {e.data.id for e in await events.of_type("stream.started")} == {stream["id"]}
    assert len(await events.of_type("stream.created")) == 1
    # and it does not end when the window of the first disconnect passes
    await media.disconnect(first, at=now())  # a repeat of the old connection's disconnect (new id)
    await settled()
    assert (await get_stream(stream["id"]))["status"] == "LIVE"


async def test_disconnect_longer_than_the_window_ends_and_the_next_publish_starts_anew(
        make_user, make_channel, ingest, live_stream_of, wait_status, events, db):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    first = await media.connect(at=now() - timedelta(seconds=30))
    stream = await live_stream_of(channel_id)
    dropped = now()
    await media.disconnect(first, at=dropped)
    ending = await wait_status(stream["id"], "ENDING", timeout=5)
    assert iso(ending["endTime"]) == dropped  # the broadcast ended when the encoder left
    assert ending["duration"] == 30 and ending["hlsUrl"] is None
    await events.wait_for(lambda p: any(x.subject == "stream.ended" for x in p), what="stream.ended")
    # ended by the window, not by the creator: nothing asks the media gateway to drop anything
    assert await events.of_type("stream.end_requested") == []

    await media.connect()
    new = await live_stream_of(channel_id, other_than=stream["id"])
    assert new["id"] != stream["id"]
    async with db() as session:
        rows = (await session.exec(
            text("SELECT status FROM streams WHERE channel_id = :c ORDER BY created_at")
            .bindparams(c=channel_id))).all()
    assert [r[0] for r in rows] == ["ENDING", "LIVE"]


@pytest.mark.settings(sweep_interval_seconds=3600)  # the sweeper would not look before the connect
async def test_a_connect_after_the_window_ends_the_old_stream_even_before_the_sweeper(
        make_user, make_channel, ingest, live_stream_of, get_stream):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    first = await media.connect(at=now() - timedelta(seconds=60))
    stream = await live_stream_of(channel_id)
    await media.disconnect(first, at=now() - timedelta(seconds=20))
    await media.connect(at=now())
    new = await live_stream_of(channel_id, other_than=stream["id"])
    old = await get_stream(stream["id"])
    assert old["status"] in ("ENDING", "ARCHIVED") and old["duration"] == 40
    assert new["status"] == "LIVE"


async def test_errored_counts_as_disconnected(make_user, make_channel, ingest, live_stream_of, wait_status):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    session_id = await media.connect()
    stream = await live_stream_of(channel_id)
    await media.disconnect(session_id, errored=True)
    await wait_status(stream["id"], "ENDING", timeout=5)


async def test_end_then_recording_ready_archives_with_the_vod(
        client, make_user, make_channel, ingest, live_stream_of, wait_status, events, outbox_drained):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    session_id = await media.connect()
    stream = await live_stream_of(channel_id)
    r = await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    assert r.status_code == 202 and r.json()["status"] == "ENDING"
    await media.disconnect(session_id)  # the media gateway dropped the ingest
    await media.recording(session_id, vod_url="http://localhost:8080/vod/abc.mp4")
    archived = await wait_status(stream["id"], "ARCHIVED")
    assert archived["vodUrl"] == "http://localhost:8080/vod/abc.mp4" and archived["isArchived"] is True
    await outbox_drained()
    published = await events.all()
    [event] = [p.event for p in published if p.subject == "stream.archived"]
    assert event.data.vod_url == archived["vodUrl"] and event.data.status == "ARCHIVED"
    changes = [(e.data.previous_status, e.data.status) for e in await events.of_type("stream.status_changed")]
    assert changes == [("OFFLINE", "LIVE"), ("LIVE", "ENDING"), ("ENDING", "ARCHIVED")]


async def test_a_recording_that_arrives_inside_the_window_archives_when_the_stream_ends(
        make_user, make_channel, ingest, live_stream_of, wait_status, settled, get_stream):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    session_id = await media.connect()
    stream = await live_stream_of(channel_id)
    await media.disconnect(session_id)
    await media.recording(session_id)
    await settled()
    # the encoder may still come back: the stream does not jump ahead
    assert (await get_stream(stream["id"]))["status"] in ("LIVE", "ARCHIVED")
    archived = await wait_status(stream["id"], "ARCHIVED", timeout=5)
    assert archived["vodUrl"] == f"http://localhost:8080/vod/{session_id}.mp4"


async def _two_parts(make_user, make_channel, ingest, live_stream_of, settled, *,
                     provider: MediaProvider = MediaProvider.LOCAL):
    """A stream whose encoder reconnected inside the window: (media, stream, first, second)."""
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    first = await media.connect(provider=provider)
    stream = await live_stream_of(channel_id)
    await media.disconnect(first)
    second = await media.connect(provider=provider)
    await settled()
    return media, stream, first, second


async def test_a_reconnected_stream_asks_for_its_parts_joined_in_order_then_archives_with_that(
        make_user, make_channel, ingest, live_stream_of, wait_status, settled, get_stream, events, publish,
        outbox_drained):
    media, stream, first, second = await _two_parts(make_user, make_channel, ingest, live_stream_of, settled)
    await media.disconnect(second)
    # the last part's recording comes first: still nothing to join without the first part
    await wait_status(stream["id"], "ENDING", timeout=5)
    await media.recording(second, duration=5)
    await settled()
    await outbox_drained()
    assert await events.of_type("stream.vod_requested") == []
    await media.recording(first, duration=3600)
    request = (await events.wait_for(lambda ps: any(p.subject == "stream.vod_requested" for p in ps)))
    [asked] = [p.event.data for p in request if p.subject == "stream.vod_requested"]
    assert asked.stream_id == stream["id"] and asked.ingest_session_ids == [first, second]
    assert (await get_stream(stream["id"]))["status"] == "ENDING"

    await publish("media.vod.joined", VodJoined(
        stream_id=stream["id"], channel_id=media.channel_id, ingest_session_ids=[first, second],
        vod_url=f"/vod/{stream['id']}.mp4", duration_seconds=3605.0, reencoded=False), source="media-gateway")
    archived = await wait_status(stream["id"], "ARCHIVED", timeout=5)
    assert archived["vodUrl"] == f"/vod/{stream['id']}.mp4" and archived["isArchived"] is True
    await outbox_drained()
    assert len(await events.of_type("stream.vod_requested")) == 1


async def test_parts_recorded_by_a_provider_cannot_be_joined_so_the_longest_is_the_vod(
        make_user, make_channel, ingest, live_stream_of, wait_status, settled, events):
    media, stream, first, second = await _two_parts(make_user, make_channel, ingest, live_stream_of, settled,
                                                    provider=MediaProvider.MUX)
    await media.recording(first, vod_url="http://vod/long.mp4", duration=3600)
    await media.disconnect(second)
    await media.recording(second, vod_url="http://vod/short.mp4", duration=5)
    archived = await wait_status(stream["id"], "ARCHIVED", timeout=5)
    assert archived["vodUrl"] == "http://vod/long.mp4"
    assert await events.of_type("stream.vod_requested") == []


@pytest.mark.settings(recording_wait_seconds=1.0)
async def test_a_part_whose_recording_never_comes_is_left_out_after_the_wait(
        make_user, make_channel, ingest, live_stream_of, wait_status, settled, events, caplog):
    media, stream, first, second = await _two_parts(make_user, make_channel, ingest, live_stream_of, settled)
    third = await media.connect()  # a third connection replaces the second (which never says it left)
    await settled()
    await media.disconnect(third)
    await media.recording(first)
    await media.recording(third)
    await wait_status(stream["id"], "ENDING", timeout=5)
    request = await events.wait_for(lambda ps: any(p.subject == "stream.vod_requested" for p in ps), timeout=10)
    [asked] = [p.event.data for p in request if p.subject == "stream.vod_requested"]
    assert asked.ingest_session_ids == [first, third]
    assert any("never came" in r.getMessage() and second in str(getattr(r, "missingParts", ""))
               for r in caplog.records)


@pytest.mark.settings(vod_join_wait_seconds=0.5)
async def test_a_join_that_never_comes_back_archives_the_longest_part_and_the_late_join_replaces_it(
        make_user, make_channel, ingest, live_stream_of, wait_status, settled, events, publish, eventually,
        get_stream):
    media, stream, first, second = await _two_parts(make_user, make_channel, ingest, live_stream_of, settled)
    await media.recording(first, duration=3600)
    await media.disconnect(second)
    await media.recording(second, duration=5)
    archived = await wait_status(stream["id"], "ARCHIVED", timeout=10)
    assert archived["vodUrl"] == f"http://localhost:8080/vod/{first}.mp4"
    assert len(await events.of_type("stream.vod_requested")) == 1

    await publish("media.vod.joined", VodJoined(
        stream_id=stream["id"], channel_id=media.channel_id, ingest_session_ids=[first, second],
        vod_url=f"/vod/{stream['id']}.mp4", duration_seconds=3605.0, reencoded=False), source="media-gateway")
    await eventually(lambda: get_stream(stream["id"]), lambda s: s["vodUrl"] == f"/vod/{stream['id']}.mp4",
                     what="the joined VOD replacing the longest part")
    again = await events.wait_for(lambda ps: sum(p.subject == "stream.archived" for p in ps) == 2)
    assert [p.event.data.vod_url for p in again if p.subject == "stream.archived"][-1] == f"/vod/{stream['id']}.mp4"


@pytest.mark.settings(recording_wait_seconds=0.5)
async def test_without_a_recording_an_ending_stream_is_archived_after_the_wait(
        client, make_user, make_channel, ingest, live_stream_of, wait_status):
    owner = make_user()
    channel_id = await make_channel(owner)
    await ingest(channel_id).connect()
    stream = await live_stream_of(channel_id)
    await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    archived = await wait_status(stream["id"], "ARCHIVED", timeout=5)
    assert archived["vodUrl"] is None and archived["isArchived"] is False


async def test_duplicate_events_change_nothing(make_user, make_channel, ingest, live_stream_of, get_stream,
                                               publish_raw, settled, events, client, wait_status,
                                               outbox_drained):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    session_id = await media.connect()
    stream = await live_stream_of(channel_id)
    await events.wait_for(lambda p: any(x.subject == "stream.started" for x in p))
    # the same connect again: redelivered under the same id, and re-announced under a new one
    connected = await media.publish("media.ingest.connected", IngestConnected(
        channel_id=channel_id, provider=MediaProvider.LOCAL, ingest_session_id=session_id,
        at=iso(stream["startTime"]), hls_url="http://elsewhere/x.m3u8"), source="media-gateway")
    await publish_raw(connected)
    await settled()
    assert await get_stream(stream["id"]) == stream
    await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    recording = await media.recording(session_id)
    await wait_status(stream["id"], "ARCHIVED")
    final = await get_stream(stream["id"])
    await publish_raw(recording)
    await media.recording(session_id, vod_url="http://vod/other.mp4")
    await media.disconnect(session_id)
    await media.disconnect(session_id)
    await settled()
    await outbox_drained()
    assert await get_stream(stream["id"]) == final
    assert len(await events.of_type("stream.started")) == 1
    assert len(await events.of_type("stream.archived")) == 1


async def test_out_of_order_events_never_move_a_stream_backwards(
        make_user, make_channel, ingest, live_stream_of, get_stream, settled, client, wait_status, events,
        outbox_drained):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    t0 = now()
    newer = await media.connect(at=t0)
    stream = await live_stream_of(channel_id)
    # a connect that happened before the current one arrives late: it changes nothing
    older = await media.connect(at=t0 - timedelta(seconds=5))
    await settled()
    assert (await get_stream(stream["id"]))["hlsUrl"].endswith(f"/{newer}/index.m3u8")
    # thumbnails: the newer one wins whatever the order of arrival
    await media.thumbnail("http://thumbs/new.jpg", time=now())
    await media.thumbnail("http://thumbs/old.jpg", time=now() - timedelta(seconds=30))
    await settled()
    assert (await get_stream(stream["id"]))["thumbnailUrl"] == "http://thumbs/new.jpg"

    await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    # the older connection is a part of the stream too (the VOD waits for its recording): it
    # recorded nothing, so the newer one's recording is the VOD
    await media.recording(older, vod_url="")
    await media.recording(newer)
    archived = await wait_status(stream["id"], "ARCHIVED")
    assert archived["vodUrl"] == f"http://localhost:8080/vod/{newer}.mp4"
    # late news about the archived stream's connection: a connect and a disconnect
    await media.connect(newer, at=t0)
    await media.disconnect(newer, at=t0 + timedelta(seconds=1))
    await settled()
    assert await get_stream(stream["id"]) == archived
    r = await client.get(f"/api/channels/{channel_id}/streams", params={"status": "LIVE"})
    assert r.json()["items"] == []
    await outbox_drained()
    assert len(await events.of_type("stream.started")) == 1


async def test_a_disconnect_seen_before_its_connect(make_user, make_channel, ingest, live_stream_of,
                                                    wait_status):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    session_id = uuid.uuid4().hex
    t0 = now()
    await media.disconnect(session_id, at=t0 + timedelta(seconds=0.2))
    await media.connect(session_id, at=t0)
    stream = await live_stream_of(channel_id)  # it did broadcast ...
    await wait_status(stream["id"], "ENDING", timeout=5)  # ... and its encoder is gone


async def test_thumbnail_of_the_live_stream(make_user, make_channel, ingest, live_stream_of, get_stream,
                                            eventually):
    owner = make_user()
    channel_id = await make_channel(owner)
    media = ingest(channel_id)
    await media.connect()
    stream = await live_stream_of(channel_id)
    await media.thumbnail("http://thumbs/1.jpg")
    updated = await eventually(lambda: get_stream(stream["id"]), lambda s: s["thumbnailUrl"] == "http://thumbs/1.jpg")
    assert updated["status"] == "LIVE"


async def test_an_ingest_before_its_channel_is_known(client, make_user, ingest, live_stream_of, publish,
                                                     settled):
    owner = make_user()
    channel_id = str(uuid.uuid4())
    await ingest(channel_id).connect()
    stream = await live_stream_of(channel_id)
    assert stream["title"] == "Live stream"
    r = await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    assert r.status_code == 403  # nobody is known to own it yet
    await publish("channel.created", Channel(id=channel_id, slug="late", name="Late", description=None,
                                             category=None, tags=[], avatar=None, banner=None, is_public=True,
                                             owner_id=owner.id), source="channels")
    await settled()
    r = await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    assert r.status_code == 202 and r.json()["status"] == "ENDING"


async def test_an_idle_sweeper_looks_once_a_window_and_still_ends_a_stream_in_time(
        streams_app, make_user, make_channel, ingest, live_stream_of, wait_status):
    """Nothing LIVE or ENDING: a pass every reconnect window (1 s here), not every 0.1 s; a stream
    that goes LIVE meanwhile is seen before its window can run out, and ends on time."""
    from sqlalchemy import event

    passes = []

    def on_execute(conn, cursor, statement, *args):
        if "GROUP BY streams.status" in statement:  # the sweeper's first read
            passes.append(asyncio.get_running_loop().time())

    engine = streams_app.state.runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        await asyncio.sleep(2.2)
        assert 2 <= len(passes) <= 4, f"{len(passes)} sweeps in 2.2 s with nothing LIVE"
        channel_id = await make_channel(make_user())
        media = ingest(channel_id)
        session_id = await media.connect()
        stream = await live_stream_of(channel_id)
        dropped = asyncio.get_running_loop().time()
        await media.disconnect(session_id, at=now())
        await wait_status(stream["id"], "ENDING", timeout=5)
        # the window (1 s) and one short interval (0.1 s), with room for a busy machine
        assert asyncio.get_running_loop().time() - dropped < 1.0 + 0.1 + 0.7
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
