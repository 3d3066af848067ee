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
