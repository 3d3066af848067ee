"""Password hashing with argon2id."""

import os

import anyio
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int):
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost,
                                      parallelism=parallelism, type=Type.ID)
        # verified when the account does not exist, so timing does not reveal which logins exist
        self._dummy = self._hasher.hash("not-a-real-password")
        self._limiter: anyio.CapacityLimiter | None = None

    # argon2 spends tens of milliseconds of CPU (and its memory cost) on purpose: in a worker thread,
    # or the event loop stalls for every request; a few at a time, or a burst exhausts memory
    async def _off_loop(self, fn, *args):
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(os.cpu_count() or 1)
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
