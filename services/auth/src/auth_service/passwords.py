"""Password hashing with argon2id.

Each hash holds its memory cost (46 MiB by default) for its whole run, so how many run at once is
bounded by memory, not by CPUs: `os.cpu_count()` is the node's count (64 on a big node) while the
pod may have 512 MiB. `hash_concurrency` sizes it from the container's memory limit.
"""

from collections.abc import Sequence
from pathlib import Path

import anyio
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


# cgroup v2, then v1: the limit the kernel enforces on this container
CGROUP_MEMORY_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
# cgroup v1 reports "no limit" as a huge number (page-rounded LONG_MAX); nothing real is this big
_UNLIMITED = 1 << 60
# hashes at once when no limit is known (a developer's machine): 4 x 46 MiB
DEFAULT_CONCURRENCY = 4


def memory_limit(paths: Sequence[Path] = CGROUP_MEMORY_LIMITS) -> int | None:
    """The container's memory limit in bytes, or None when there is none (or no cgroup)."""
    for path in paths:
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw == "max" or not raw.isdigit() or int(raw) >= _UNLIMITED:
            return None
        return int(raw)
    return None


def hash_concurrency(*, memory_kib: int, memory_limit: int | None, budget: int | None = None,
                     explicit: int | None = None) -> int:
    """How many hashes may run at once: `explicit` if set; else as many as fit in `budget` bytes,
    by default half the memory limit (the other half is the service itself); at least one."""
    if explicit:
        return explicit
    if budget is None:
        if memory_limit is None:
            return DEFAULT_CONCURRENCY
        budget = memory_limit // 2
    return max(1, budget // (memory_kib * 1024))


class Passwords:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, max_concurrent: int = DEFAULT_CONCURRENCY):
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost,
                                      parallelism=parallelism, type=Type.ID)
        self.max_concurrent = max_concurrent
        # verified when the account does not exist, so timing does not reveal which logins exist
        self._dummy = self._hasher.hash("not-a-real-password")
        self._limiter: anyio.CapacityLimiter | None = None

    # argon2 spends tens of milliseconds of CPU (and its memory cost) on purpose: in a worker thread,
    # or the event loop stalls for every request; a few at a time, or a burst exhausts memory
    async def _off_loop(self, fn, *args):
        if self._limiter is None:  # created in the running loop
            self._limiter = anyio.CapacityLimiter(self.max_concurrent)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def hash_async(self, password: str) -> str:
        return await self._off_loop(self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        return await self._off_loop(self.verify, password_hash, password)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
