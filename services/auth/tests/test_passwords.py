"""Password hashing (argon2id); the suite itself runs with cheap parameters, production's are checked here."""

from argon2 import extract_parameters
from argon2.low_level import Type

from auth_service.config import Settings
from auth_service.passwords import Passwords


def test_production_defaults_follow_owasp():
    # explicit values, so a .env or environment cannot make this pass by accident
    s = Settings.model_fields
    assert s["argon2_memory_kib"].default >= 47104  # OWASP: m=46 MiB, t=1, p=1 (or stronger)
    assert s["argon2_time_cost"].default >= 1
    assert s["argon2_parallelism"].default == 1
    assert s["access_token_ttl_seconds"].default <= 900  # API.md: at most 15 minutes


def test_hash_is_argon2id_with_the_configured_cost():
    passwords = Passwords(memory_kib=19456, time_cost=2, parallelism=1)
    hashed = passwords.hash("correct horse battery")
    params = extract_parameters(hashed)
    assert params.type is Type.ID
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 2, 1)
    assert "correct horse battery" not in hashed
    assert passwords.hash("correct horse battery") != hashed  # salted


async def test_verify():
    passwords = Passwords(memory_kib=8192, time_cost=1, parallelism=1)
    hashed = await passwords.hash_async("correct horse battery")
    assert passwords.verify(hashed, "correct horse battery")
    assert await passwords.verify_async(hashed, "correct horse battery")
    assert not passwords.verify(hashed, "correct horse batterY")
    assert not passwords.verify(hashed, "")
    assert not passwords.verify("not a hash", "correct horse battery")
    # no account: the dummy hash is checked (same cost) but never succeeds, even with its password
    assert not passwords.verify(None, "not-a-real-password")
    assert not await passwords.verify_async(None, "anything at all")


def test_needs_rehash_when_the_cost_changes():
    cheap = Passwords(memory_kib=8192, time_cost=1, parallelism=1)
    stronger = Passwords(memory_kib=16384, time_cost=1, parallelism=1)
    hashed = cheap.hash("correct horse battery")
    assert not cheap.needs_rehash(hashed)
    assert stronger.needs_rehash(hashed)
    assert stronger.verify(hashed, "correct horse battery")  # old hashes keep working meanwhile


async def test_login_upgrades_an_outdated_hash(app_client, register, db):
    from sqlalchemy import text

    await register("rehash_1")  # hashed with the suite's cheap cost
    stronger = await app_client(argon2_memory_kib=16384)
    r = await stronger.post(
        "/api/auth/login", json={"login": "rehash_1", "password": "correct horse battery"}
    )
    assert r.status_code == 200
    async with db() as session:
        stored = (
            await session.execute(text("SELECT password_hash FROM users WHERE username = 'rehash_1'"))
        ).scalar_one()
    assert extract_parameters(stored).memory_cost == 16384


# ---- how many hashes at once (issue 14 item 16) ---------------------------------------------------

MIB = 1024 * 1024


def test_concurrency_is_sized_from_the_memory_limit_not_the_cpus():
    from auth_service.passwords import hash_concurrency

    # a 512 MiB pod, 46 MiB per hash, half of the limit for hashing: 5 at once, on a 64-CPU node too
    assert hash_concurrency(memory_kib=47104, memory_limit=512 * MIB) == 5
    assert hash_concurrency(memory_kib=47104, memory_limit=256 * MIB) == 2
    # never zero: one hash at a time still serves logins
    assert hash_concurrency(memory_kib=47104, memory_limit=64 * MIB) == 1
    # no limit known (a developer's machine): a fixed, small number
    assert hash_concurrency(memory_kib=47104, memory_limit=None) == 4
    # an explicit budget or count wins
    assert hash_concurrency(memory_kib=47104, memory_limit=512 * MIB, budget=100 * MIB) == 2
    assert hash_concurrency(memory_kib=47104, memory_limit=512 * MIB, explicit=7) == 7


def test_memory_limit_is_read_from_the_cgroup(tmp_path):
    from auth_service.passwords import memory_limit

    v2 = tmp_path / "memory.max"
    v2.write_text("536870912\n")
    assert memory_limit([v2]) == 512 * MIB
    v2.write_text("max\n")
    assert memory_limit([v2]) is None
    v1 = tmp_path / "memory.limit_in_bytes"
    v1.write_text("9223372036854771712\n")  # cgroup v1's "unlimited"
    assert memory_limit([tmp_path / "missing", v1]) is None
    v1.write_text("268435456\n")
    assert memory_limit([tmp_path / "missing", v1]) == 256 * MIB


def test_settings_choose_the_limit(auth_settings):
    from auth_service.main import create_app

    app = create_app(auth_settings.model_copy(update={"argon2_max_concurrent": 3}), configure_process=False)
    assert app.state.passwords.max_concurrent == 3


async def test_a_login_burst_never_runs_more_hashes_at_once_than_the_limit(auth_settings):
    """Counts hashes in flight (not time): each waits until the limit is reached, so a missing or
    larger limit shows as more in flight than allowed."""
    import asyncio
    import threading

    import httpx

    from auth_service.main import create_app

    limit = 3
    # the per-account login limit would answer 429 before a burst of one account gets going
    settings = auth_settings.model_copy(update={"argon2_max_concurrent": limit, "login_failures_per_account": 1000})
    app = create_app(settings, configure_process=False)
    passwords = app.state.passwords
    real_verify = passwords.verify
    lock, reached = threading.Lock(), threading.Event()
    state = {"in_flight": 0, "most": 0, "calls": 0}

    def counting_verify(*args, **kwargs):
        with lock:
            state["in_flight"] += 1
            state["calls"] += 1
            state["most"] = max(state["most"], state["in_flight"])
            if state["in_flight"] >= limit:
                reached.set()
        try:
            reached.wait(5)  # hold the slot until the burst has filled every allowed one
            return real_verify(*args, **kwargs)
        finally:
            with lock:
                state["in_flight"] -= 1

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
            r = await client.post("/api/auth/register", json={"email": "burst@example.com", "username": "burst",
                                                               "password": "correct horse battery"})
            assert r.status_code == 201, r.text
            passwords.verify = counting_verify  # what verify_async runs in its worker thread
            answers = await asyncio.gather(*(
                client.post("/api/auth/login", json={"login": "burst", "password": "correct horse battery"})
                for _ in range(4 * limit)))
    assert [a.status_code for a in answers] == [200] * (4 * limit)
    assert state["calls"] == 4 * limit
    assert state["most"] == limit, state
