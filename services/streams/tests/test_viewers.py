"""Viewer counts from chat edges' presence (core NATS): summed over edges, expired, throttled.

Presence TTL is 1 s here and the counter looks every 0.05 s (conftest)."""

import asyncio
import itertools
import time

import pytest


@pytest.fixture
async def live_channel(make_user, make_channel, ingest, live_stream_of):
    owner = make_user()
    channel_id = await make_channel(owner)
    await ingest(channel_id).connect()
    return channel_id, await live_stream_of(channel_id), owner


async def test_counts_are_summed_over_edges_and_a_silent_edge_expires(live_channel, presence, get_stream,
                                                                       eventually, events):
    channel_id, stream, _ = live_channel
    await presence(channel_id, "edge-a", 3)
    await presence(channel_id, "edge-b", 4)
    counted = await eventually(lambda: get_stream(stream["id"]), lambda s: s["viewerCount"] == 7,
                               what="7 viewers")
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
    published = await events.wait_for(
        lambda p: any(x.subject == "stream.viewers" and x.event.data.count == 3 for x in p), what="viewers 3")
    viewers = [p.event.data for p in published if p.subject == "stream.viewers"]
    assert all(v.stream_id == stream["id"] and v.channel_id == channel_id for v in viewers)
    assert viewers[-1].count == 3 and viewers[-1].peak == 7
    assert 7 in [v.count for v in viewers]


@pytest.mark.settings(presence_ttl_seconds=60)  # the edge must not expire while we wait
async def test_viewers_are_published_at_most_once_a_second_and_only_on_change(live_channel, presence, events,
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
    published = await events.wait_for(
        lambda p: any(x.subject == "stream.viewers" and x.event.data.count == n for x in p),
        what=f"viewers {n}")
    viewers = [p.event for p in published if p.subject == "stream.viewers"]
    assert 2 <= len(viewers) <= 4, [(e.time, e.data.count) for e in viewers]
    gaps = [(b.time - a.time).total_seconds() for a, b in itertools.pairwise(viewers)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    # the same count again and again publishes nothing more
    for _ in range(10):
        await presence(channel_id, "edge-a", n)
        await asyncio.sleep(0.1)
    assert len(await events.of_type("stream.viewers")) == len(viewers)


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
