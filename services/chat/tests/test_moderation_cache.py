"""The moderation cache's reload policy, with a source whose loads the test holds and releases
(the replicas themselves are tested against PostgreSQL in test_replicas.py)."""

import asyncio

import pytest
from chat_service.moderation.service import Moderation

pytestmark = pytest.mark.asyncio


class HeldSource:
    """load_channel answers `self.state` once the test sets `self.release`."""

    def __init__(self, state):
        self.state = state
        self.loads = 0
        self.release = asyncio.Event()
        self.fail = False

    async def load_channel(self, channel_id):
        self.loads += 1
        await self.release.wait()
        if self.fail:
            raise ConnectionError("replica unreachable")
        return self.state


async def primed(source: HeldSource, ttl: float) -> Moderation:
    cache = Moderation(source, ttl_seconds=ttl)
    source.release.set()
    assert await cache.channel("c1") == source.state
    source.release.clear()
    return cache


async def test_an_expired_room_is_answered_at_once_while_it_reloads_in_the_background():
    source = HeldSource({"version": 1})
    cache = await primed(source, ttl=0.05)
    await asyncio.sleep(0.1)
    source.state = {"version": 2}

    # the reload is held: a read that waited for it would time out here
    assert await asyncio.wait_for(cache.channel("c1"), 0.5) == {"version": 1}
    assert await asyncio.wait_for(cache.channel("c1"), 0.5) == {"version": 1}
    await asyncio.sleep(0)
    assert source.loads == 2, "one background reload, however many reads meanwhile"

    source.release.set()
    for _ in range(50):
        if await cache.channel("c1") == {"version": 2}:
            break
        await asyncio.sleep(0.01)
    assert await cache.channel("c1") == {"version": 2}
    await cache.stop()


async def test_a_failed_background_reload_keeps_the_stale_state_and_tries_again():
    source = HeldSource({"version": 1})
    cache = await primed(source, ttl=0.05)
    await asyncio.sleep(0.1)
    source.fail = True
    source.release.set()
    assert await cache.channel("c1") == {"version": 1}
    await asyncio.sleep(0.05)
    assert await cache.channel("c1") == {"version": 1}
    await asyncio.sleep(0.05)
    assert source.loads >= 3
    await cache.stop()


async def test_an_unknown_room_is_not_served_stale():
    # "no such channel" is remembered briefly and then asked again, waiting for the answer: a
    # channel created a moment ago must be usable at once
    source = HeldSource(None)
    cache = await primed(source, ttl=0.05)
    await asyncio.sleep(0.6)
    source.state = {"version": 1}
    read = asyncio.ensure_future(cache.channel("c1"))
    await asyncio.sleep(0.05)
    assert not read.done()
    source.release.set()
    assert await read == {"version": 1}
    await cache.stop()
