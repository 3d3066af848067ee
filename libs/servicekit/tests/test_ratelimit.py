"""Fixed-window rate limiting against a real Valkey."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from servicekit.ratelimit import RateLimiter


@pytest.fixture
async def limiter(redis_url):
    client = Redis.from_url(redis_url)
    yield RateLimiter(client, prefix="test-rl")
    await client.aclose()


async def test_hit_allows_up_to_the_limit_then_refuses(limiter):
    verdicts = [await limiter.hit("login:ada", limit=3, window_seconds=60) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert [v.count for v in verdicts] == [1, 2, 3, 4, 5]
    for v in verdicts:
        assert 0 < v.retry_after <= 60


async def test_keys_are_independent_and_prefixed(limiter, redis_url):
    await limiter.hit("a", limit=1, window_seconds=60)
    assert (await limiter.hit("b", limit=1, window_seconds=60)).allowed
    client = Redis.from_url(redis_url)
    try:
        assert sorted(await client.keys("*")) == [b"test-rl:a", b"test-rl:b"]
        assert 0 < await client.ttl("test-rl:a") <= 60
    finally:
        await client.aclose()


async def test_peek_does_not_count(limiter):
    fresh = await limiter.peek("upload:u1", limit=2)
    assert fresh.allowed and fresh.count == 0 and fresh.retry_after >= 1
    await limiter.hit("upload:u1", limit=2, window_seconds=60)
    assert (await limiter.peek("upload:u1", limit=2)).allowed
    assert (await limiter.peek("upload:u1", limit=2)).count == 1  # peeking twice counted nothing
    await limiter.hit("upload:u1", limit=2, window_seconds=60)
    full = await limiter.peek("upload:u1", limit=2)
    assert not full.allowed and full.count == 2
    assert 0 < full.retry_after <= 60


async def test_reset_clears_the_window(limiter):
    for _ in range(3):
        await limiter.hit("k", limit=2, window_seconds=60)
    assert not (await limiter.peek("k", limit=2)).allowed
    await limiter.reset("k")
    assert (await limiter.peek("k", limit=2)).count == 0
    assert (await limiter.hit("k", limit=2, window_seconds=60)).count == 1


async def test_window_expires(limiter):
    assert (await limiter.hit("w", limit=1, window_seconds=1)).allowed
    refused = await limiter.hit("w", limit=1, window_seconds=1)
    assert not refused.allowed and refused.retry_after == 1
    await asyncio.sleep(1.2)
    again = await limiter.hit("w", limit=1, window_seconds=1)
    assert again.allowed and again.count == 1


async def test_steady_traffic_does_not_extend_the_window(limiter):
    # a fixed window: hits inside it must not push its expiry further out
    counts = []
    for _ in range(4):
        counts.append((await limiter.hit("steady", limit=100, window_seconds=1)).count)
        await asyncio.sleep(0.4)
    assert counts[:3] == [1, 2, 3]
    assert counts[3] == 1
