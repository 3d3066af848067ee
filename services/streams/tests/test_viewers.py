"""Viewer counts from chat edges' presence (core NATS): summed over edges, expired, throttled,
and published to VIEWERS (the latest per stream), never through the outbox into EVENTS.

Presence TTL is 1 s here and the counter looks every 0.05 s (conftest)."""

import asyncio
import itertools
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from contracts.envelope import Envelope, parse_event
from contracts.subjects import STREAM_VIEWERS_ALL, VIEWERS_STREAM


class Viewers:
    """Every stream.viewers event this test sees, as its subscribers (channels, chat edges) do."""

    def __init__(self):
        self.items: list[tuple[str, Envelope]] = []

    async def on_message(self, msg) -> None:
        self.items.append((msg.subject, parse_event(msg.data)))

    def of(self, stream_id: str) -> list[Envelope]:
        return [e for subject, e in self.items if e.data.stream_id == stream_id]

    async def wait_for(self, stream_id: str, count: int, timeout: float = 10.0) -> list[Envelope]:
        deadline = time.monotonic() + timeout
        while not any(e.data.count == count for e in self.of(stream_id)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no stream.viewers with count {count}: {[e.data for e in self.of(stream_id)]}")
            await asyncio.sleep(0.05)
        return self.of(stream_id)


@pytest.fixture
async def viewers(nc):
    seen = Viewers()
    sub = await nc.subscribe(STREAM_VIEWERS_ALL, cb=seen.on_message)
    await nc.flush()
    yield seen
    await sub.unsubscribe()


@pytest.fixture
async def live_channel(make_user, make_channel, ingest, live_stream_of):
    owner = make_user()
    channel_id = await make_channel(owner)
    await ingest(channel_id).connect()
    return channel_id, await live_stream_of(channel_id), owner


async def test_counts_are_summed_over_edges_and_a_silent_edge_expires(live_channel, presence, get_stream,
                                                                       eventually, viewers):
    channel_id, stream, _ = live_channel

    async def both_edges_report():
        # edges report every tick; a slow machine must not let the 1 s TTL expire one meanwhile
        await presence(channel_id, "edge-a", 3)
        await presence(channel_id, "edge-b", 4)
        return await get_stream(stream["id"])

    counted = await eventually(both_edges_report, lambda s: s["viewerCount"] == 7, what="7 viewers")
    assert counted["peakViewers"] == 7
    # edge-a keeps reporting; edge-b goes quiet and drops out after the TTL (1 s)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        await presence(channel_id, "edge-a", 3)
        current = await get_stream(stream["id"])
        if current["viewerCount"] == 3:
            break
        await asyncio.sleep(0.2)
    assert current["viewerCount"] == 3 and current["peakViewers"] == 7
    published = [e.data for e in await viewers.wait_for(stream["id"], 3)]
    assert all(v.stream_id == stream["id"] and v.channel_id == channel_id for v in published)
    assert published[-1].count == 3 and published[-1].peak == 7
    assert 7 in [v.count for v in published]
    subjects = {subject for subject, e in viewers.items if e.data.stream_id == stream["id"]}
    assert subjects == {f"stream.viewers.{stream['id']}"}


@pytest.mark.settings(presence_ttl_seconds=60)  # the edge must not expire while we wait
async def test_viewers_are_published_at_most_once_a_second_and_only_on_change(live_channel, presence, viewers,
                                                                              get_stream, eventually):
    channel_id, stream, _ = live_channel
    # a burst of changing counts for about two seconds
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 2.2:
        n += 1
        await presence(channel_id, "edge-a", n)
        await asyncio.sleep(0.05)
    final = await eventually(lambda: get_stream(stream["id"]), lambda s: s["viewerCount"] == n,
                             what=f"the last count ({n})")
    assert final["peakViewers"] == n
    published = await viewers.wait_for(stream["id"], n)
    # what the service decided: each event carries the time its throttle let it through, so the
    # spacing is asserted on those decisions, not on when the messages happened to arrive here
    assert len(published) >= 2  # the first count and the last differ
    gaps = [b.time - a.time for a, b in itertools.pairwise(published)]
    assert all(gap >= timedelta(seconds=1) for gap in gaps), gaps
    counts = [e.data.count for e in published]
    assert all(a != b for a, b in itertools.pairwise(counts)), counts  # only on change
    # the same count again and again publishes nothing more
    for _ in range(10):
        await presence(channel_id, "edge-a", n)
        await asyncio.sleep(0.1)
    assert len(viewers.of(stream["id"])) == len(published)


@pytest.mark.settings(presence_ttl_seconds=60)  # a slow machine must not expire edge-a between 4 and 9
async def test_counts_skip_the_outbox_and_events_and_only_the_latest_is_kept(live_channel, presence, viewers,
                                                                             db, nc, events):
    channel_id, stream, _ = live_channel
    for n in (4, 9):
        await presence(channel_id, "edge-a", n)
        await viewers.wait_for(stream["id"], n)
    async with db() as session:
        staged = (await session.exec(text("SELECT count(*) FROM outbox WHERE event_type = 'stream.viewers'"))
                  ).scalar_one()
    assert staged == 0
    assert not [p for p in await events.all() if p.event.type == "stream.viewers"]
    js = nc.jetstream()
    subject = f"stream.viewers.{stream['id']}"
    info = await js.stream_info(VIEWERS_STREAM.name, subjects_filter=subject)
    assert info.config.max_msgs_per_subject == 1 and info.state.subjects == {subject: 1}
    assert parse_event((await js.get_last_msg(VIEWERS_STREAM.name, subject)).data).data.count == 9


async def test_presence_of_a_channel_that_is_not_live_changes_nothing(client, make_user, make_channel,
                                                                      presence, get_stream):
    owner = make_user()
    channel_id = await make_channel(owner)
    prepared = (await client.post(f"/api/streams/{channel_id}/start", headers=owner.headers)).json()
    await presence(channel_id, "edge-a", 12)
    await asyncio.sleep(0.3)  # a few ticks of the counter
    assert (await get_stream(prepared["id"]))["viewerCount"] == 0


async def test_the_count_drops_to_zero_when_the_stream_ends(client, live_channel, presence, get_stream,
                                                             eventually):
    channel_id, stream, owner = live_channel
    await presence(channel_id, "edge-a", 5)
    await eventually(lambda: get_stream(stream["id"]), lambda s: s["viewerCount"] == 5)
    r = await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    assert r.status_code == 202
    assert r.json()["viewerCount"] == 0 and r.json()["peakViewers"] == 5
    await presence(channel_id, "edge-a", 6)
    await asyncio.sleep(0.3)  # a few ticks of the counter: an ended stream is not counted
    assert (await get_stream(stream["id"]))["viewerCount"] == 0


# ---- a tick asks PostgreSQL only when a count can have changed ---------------------------------

@pytest.fixture
def live_looks(streams_app):
    """How many times the app's viewer counter has read the LIVE streams so far (its own SELECT,
    counted on the app's engine; no other query reads them this way)."""
    from sqlalchemy import event

    engine = streams_app.state.runtime.db.engine.sync_engine
    seen = []

    def on_execute(conn, cursor, statement, *args):
        if "FROM streams WHERE status = 'LIVE'" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    yield lambda: len(seen)
    event.remove(engine, "before_cursor_execute", on_execute)


async def test_the_counter_asks_nothing_per_tick_while_nobody_watches(live_channel, live_looks, get_stream):
    _, stream, _ = live_channel
    await asyncio.sleep(0.3)  # the looks the start and the go-live asked for are done
    before = live_looks()
    await asyncio.sleep(1.0)  # 20 ticks of 0.05 s
    assert live_looks() == before, "ticks with no viewer anywhere read the LIVE streams"
    assert (await get_stream(stream["id"]))["viewerCount"] == 0


@pytest.mark.settings(presence_ttl_seconds=60)  # edge-a must not expire while the test waits
async def test_a_steady_count_is_written_once_then_left_alone_and_a_change_still_lands(
        live_channel, presence, get_stream, eventually, live_looks):
    channel_id, stream, _ = live_channel
    await presence(channel_id, "edge-a", 5)
    await eventually(lambda: get_stream(stream["id"]), lambda s: s["viewerCount"] == 5, what="5 viewers")
    await asyncio.sleep(0.2)
    before = live_looks()
    for _ in range(5):  # the edge keeps reporting the same count
        await presence(channel_id, "edge-a", 5)
        await asyncio.sleep(0.2)
    assert live_looks() == before, "an unchanged count was looked at again"
    await presence(channel_id, "edge-a", 0)  # everybody left
    await eventually(lambda: get_stream(stream["id"]), lambda s: s["viewerCount"] == 0, timeout=3,
                     what="the count back to 0 when the viewers left")


@pytest.mark.settings(presence_ttl_seconds=60, viewers_recheck_seconds=60)
async def test_viewers_waiting_in_the_room_are_counted_when_the_stream_goes_live(
        make_user, make_channel, ingest, live_stream_of, presence, get_stream, eventually):
    owner = make_user()
    channel_id = await make_channel(owner)
    await presence(channel_id, "edge-a", 4)
    await asyncio.sleep(0.3)  # looked: nothing LIVE, so nothing owed
    await ingest(channel_id).connect()
    stream = await live_stream_of(channel_id)
    await eventually(lambda: get_stream(stream["id"]), lambda s: s["viewerCount"] == 4, timeout=2,
                     what="the waiting viewers counted on the new LIVE stream")


@pytest.mark.settings(presence_ttl_seconds=60, viewers_recheck_seconds=60)
async def test_a_stream_restarted_under_steady_viewers_is_counted_at_once(
        client, live_channel, ingest, live_stream_of, presence, get_stream, eventually):
    channel_id, stream, owner = live_channel
    await presence(channel_id, "edge-a", 6)
    await eventually(lambda: get_stream(stream["id"]), lambda s: s["viewerCount"] == 6, what="6 viewers")
    r = await client.post(f"/api/streams/{stream['id']}/end", headers=owner.headers)
    assert r.status_code == 202
    await asyncio.sleep(0.3)  # the same totals, looked at and agreed: only the go-live can say "look"
    await ingest(channel_id).connect()
    again = await live_stream_of(channel_id, other_than=stream["id"])
    await eventually(lambda: get_stream(again["id"]), lambda s: s["viewerCount"] == 6, timeout=2,
                     what="the same 6 viewers counted on the new stream")


@pytest.mark.settings(viewers_recheck_seconds=0.5)
async def test_a_count_written_behind_the_counters_back_is_corrected_on_the_recheck(
        live_channel, db, get_stream, eventually):
    _, stream, _ = live_channel
    await asyncio.sleep(0.3)
    async with db() as session:  # a replica that died after counting viewers this one never saw
        await session.exec(text("UPDATE streams SET viewer_count = 7 WHERE id = CAST(:id AS uuid)").bindparams(id=stream["id"]))
        await session.commit()
    await eventually(lambda: get_stream(stream["id"]), lambda s: s["viewerCount"] == 0, timeout=2,
                     what="the stale count corrected")
