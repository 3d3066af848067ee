"""Fixed-window counters in Redis: cheap, shared by every replica, self-expiring."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    retry_after: int


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str = "rl"):
        self.redis = redis
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict:
        """Count one event; allowed while the window holds at most `limit` of them."""
        k = self._key(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(k)
            pipe.expire(k, window_seconds, nx=True)
            pipe.ttl(k)
            count, _, ttl = await pipe.execute()
        return Verdict(count <= limit, count, max(int(ttl), 1))

    async def peek(self, key: str, limit: int) -> Verdict:
        """Would one more event be refused? (checked before doing costly work)"""
        k = self._key(key)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(k)
            pipe.ttl(k)
            raw, ttl = await pipe.execute()
        count = int(raw or 0)
        return Verdict(count < limit, count, max(int(ttl), 1) if ttl and ttl > 0 else 1)

    async def reset(self, key: str) -> None:
        await self.redis.delete(self._key(key))
