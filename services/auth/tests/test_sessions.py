"""Register, login, refresh rotation and logout (API.md, Auth)."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import text

PASSWORD = "correct horse battery"


def body(name: str, **overrides) -> dict:
    return {"email": f"{name}@example.com", "password": PASSWORD, "username": name, **overrides}


# ---- register -----------------------------------------------------------------------------------


async def test_register_answers_user_and_token_pair(client, auth_settings):
    r = await client.post("/api/auth/register", json=body("alice_1", displayName="Alice"))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/json")
    result = r.json()
    assert {"user", "accessToken", "refreshToken", "expiresIn"} <= result.keys()
    assert 0 < result["expiresIn"] <= 900
    assert result["expiresIn"] == auth_settings.access_token_ttl_seconds
    assert result["accessToken"] != result["refreshToken"]

    user = result["user"]
    uuid.UUID(user["id"])
    assert user["username"] == "alice_1"
    assert user["email"] == "alice_1@example.com"
    assert user["displayName"] == "Alice"
    assert user["avatar"] is None
    assert user["bio"] == ""
    assert user["onboarded"] is False
    assert user["createdAt"].endswith("Z"), user["createdAt"]  # API.md: times are ISO 8601 UTC "...Z"
    assert abs(datetime.fromisoformat(user["createdAt"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert user["profile"] == {
        "socialLinks": {},
        "theme": "dark",
        "language": "en",
        "notificationEmail": None,
    }
    assert "password" not in str(user).lower()

    # the access token is a short-lived EdDSA JWT about this user
    header = jwt.get_unverified_header(result["accessToken"])
    assert header["alg"] == "EdDSA" and header["kid"]
    claims = jwt.decode(result["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == user["id"]
    assert claims["iss"] == auth_settings.jwt_issuer and claims["aud"] == auth_settings.jwt_audience
    assert 0 < claims["exp"] - claims["iat"] <= 900

    me = await client.get("/api/auth/user", headers={"Authorization": f"Bearer {result['accessToken']}"})
    assert me.status_code == 200 and me.json() == user


async def test_display_name_defaults_to_username(register):
    assert (await register("bob_2"))["user"]["displayName"] == "bob_2"


async def test_duplicate_username_is_409(client, register, assert_problem):
    await register("taken_name")
    r = await client.post("/api/auth/register", json=body("taken_name", email="other@example.com"))
    problem = assert_problem(r, 409)
    assert "username" in problem["detail"]


async def test_duplicate_email_differing_only_by_case_is_409(client, register, assert_problem):
    await register("carol_3")
    r = await client.post("/api/auth/register", json=body("carol_other", email="CAROL_3@Example.COM"))
    problem = assert_problem(r, 409)
    assert "email" in problem["detail"]
    # and the original can still log in: nothing was half-created
    login = await client.post("/api/auth/login", json={"login": "carol_other", "password": PASSWORD})
    assert login.status_code == 401


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"username": "Alice"}, "username"),  # upper case is refused, never lowered
        ({"username": "ALICE_X"}, "username"),
        ({"username": "ab"}, "username"),
        ({"username": "a" * 26}, "username"),
        ({"username": "dash-name"}, "username"),
        ({"username": "space name"}, "username"),
        ({"username": "ünïcode"}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"email": "spa ce@example.com"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short77"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"username": 12345}, "username"),
        ({"password": 12345678}, "password"),
        ({"email": ["a@example.com"]}, "email"),
        ({"displayName": ""}, "displayName"),
        ({"displayName": "x" * 51}, "displayName"),
        ({"displayName": "bell\x07"}, "displayName"),
    ],
)
async def test_invalid_registration_is_422_with_field_errors(client, assert_problem, changes, field):
    r = await client.post("/api/auth/register", json=body("valid_name", **changes))
    assert_problem(r, 422, fields=(field,))


@pytest.mark.parametrize("missing", ["email", "password", "username"])
async def test_missing_field_is_422(client, assert_problem, missing):
    payload = body("valid_name")
    del payload[missing]
    assert_problem(await client.post("/api/auth/register", json=payload), 422, fields=(missing,))


async def test_password_length_bounds_are_inclusive(client):
    r8 = await client.post("/api/auth/register", json=body("pw_eight", password="x" * 8))
    r128 = await client.post("/api/auth/register", json=body("pw_long", password="y" * 128))
    assert (r8.status_code, r128.status_code) == (201, 201)
    login = await client.post("/api/auth/login", json={"login": "pw_long", "password": "y" * 128})
    assert login.status_code == 200


async def test_username_length_bounds_are_inclusive(client):
    assert (await client.post("/api/auth/register", json=body("abc"))).status_code == 201
    assert (await client.post("/api/auth/register", json=body("z" * 25))).status_code == 201


@pytest.mark.parametrize("raw", [b"not json", b'{"email": ', b"[]", b"null", b'"string"'])
async def test_non_json_or_non_object_body_is_422_problem(client, assert_problem, raw):
    r = await client.post("/api/auth/register", content=raw, headers={"content-type": "application/json"})
    assert_problem(r, 422)


async def test_empty_body_is_422_problem(client, assert_problem):
    assert_problem(await client.post("/api/auth/register"), 422)


async def test_unknown_route_and_wrong_method_are_problems(client, assert_problem):
    assert_problem(await client.get("/api/auth/nope"), 404)
    assert_problem(await client.get("/api/auth/register"), 405)


async def test_registration_rate_limit_per_ip(app_client, assert_problem):
    c = await app_client(registrations_per_ip_per_hour=2, ip="10.0.0.7")
    for name in ("rl_one", "rl_two"):
        assert (await c.post("/api/auth/register", json=body(name))).status_code == 201
    r = await c.post("/api/auth/register", json=body("rl_three"))
    assert_problem(r, 429)
    assert 1 <= int(r.headers["retry-after"]) <= 3600
    # another address is not affected
    other = await app_client(registrations_per_ip_per_hour=2, ip="10.0.0.8")
    assert (await other.post("/api/auth/register", json=body("rl_four"))).status_code == 201


async def test_default_registration_limit_allows_a_test_suite(auth_settings):
    assert auth_settings.registrations_per_ip_per_hour >= 1000


# ---- login --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login", ["dave_4", "dave_4@example.com", "DAVE_4@EXAMPLE.COM", "  dave_4@example.com "]
)
async def test_login_by_username_or_email(client, register, bearer, login):
    created = await register("dave_4")
    r = await client.post("/api/auth/login", json={"login": login, "password": PASSWORD})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["user"] == created["user"]
    assert 0 < result["expiresIn"] <= 900
    assert result["refreshToken"] != created["refreshToken"]
    me = await client.get("/api/auth/user", headers=bearer(result))
    assert me.json()["id"] == created["user"]["id"]


async def test_username_login_is_exact(client, register, assert_problem):
    await register("erin_5")
    assert_problem(await client.post("/api/auth/login", json={"login": "ERIN_5", "password": PASSWORD}), 401)


async def test_wrong_password_and_unknown_account_answer_the_same(client, register, assert_problem):
    await register("frank_6")
    wrong = await client.post("/api/auth/login", json={"login": "frank_6", "password": "wrong password"})
    unknown = await client.post(
        "/api/auth/login", json={"login": "nobody_here", "password": "wrong password"}
    )
    unknown_mail = await client.post(
        "/api/auth/login", json={"login": "nobody@example.com", "password": PASSWORD}
    )
    first = assert_problem(wrong, 401)
    assert assert_problem(unknown, 401) == first
    assert assert_problem(unknown_mail, 401) == first
    assert wrong.headers["content-type"] == unknown.headers["content-type"]
    assert "wrong" in first["detail"].lower() or "invalid" in first["detail"].lower()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"login": "x"},
        {"password": "x"},
        {"login": "", "password": "x"},
        {"login": "x", "password": "p" * 129},
        {"login": 5, "password": "x"},
    ],
)
async def test_malformed_login_is_422(client, assert_problem, payload):
    assert_problem(await client.post("/api/auth/login", json=payload), 422)


async def test_failed_logins_lock_the_account_with_retry_after(
    client, register, assert_problem, auth_settings
):
    await register("gina_7")
    await register("hank_8")
    limit = auth_settings.login_failures_per_account
    assert limit == 10  # API.md: about 10 failed logins per account per minute
    for _ in range(limit):
        assert_problem(
            await client.post("/api/auth/login", json={"login": "gina_7", "password": "guess!!!"}), 401
        )
    # the 11th attempt is refused before the password is even checked, the right one included
    for password in ("guess!!!", PASSWORD):
        r = await client.post("/api/auth/login", json={"login": "gina_7", "password": password})
        assert_problem(r, 429)
        assert 1 <= int(r.headers["retry-after"]) <= auth_settings.login_failure_window_seconds
    # the counter keys on the account: padding, or its email in any case, do not open a new one
    for login in (" gina_7 ", "GINA_7@EXAMPLE.COM"):
        r = await client.post("/api/auth/login", json={"login": login, "password": PASSWORD})
        assert r.status_code == 429, login
    # another account is not affected
    assert (
        await client.post("/api/auth/login", json={"login": "hank_8", "password": PASSWORD})
    ).status_code == 200


async def test_username_and_email_share_the_account_failure_count(client, register, auth_settings):
    await register("ivy_9")
    for i in range(auth_settings.login_failures_per_account):
        login = "ivy_9" if i % 2 else "IVY_9@example.com"
        assert (await client.post("/api/auth/login", json={"login": login, "password": "guess!!!"})).status_code == 401
    for login in ("ivy_9", "ivy_9@example.com"):
        r = await client.post("/api/auth/login", json={"login": login, "password": PASSWORD})
        assert r.status_code == 429, login


async def test_successful_login_resets_the_failure_count(client, register):
    await register("ivy_9")
    for _ in range(9):
        await client.post("/api/auth/login", json={"login": "ivy_9", "password": "guess!!!"})
    assert (
        await client.post("/api/auth/login", json={"login": "ivy_9", "password": PASSWORD})
    ).status_code == 200
    for _ in range(9):
        r = await client.post("/api/auth/login", json={"login": "ivy_9", "password": "guess!!!"})
        assert r.status_code == 401
    assert (
        await client.post("/api/auth/login", json={"login": "ivy_9", "password": PASSWORD})
    ).status_code == 200


async def test_failed_logins_are_limited_per_address(app_client, assert_problem):
    c = await app_client(login_failures_per_ip=3, ip="10.0.0.9")
    for i in range(3):
        r = await c.post("/api/auth/login", json={"login": f"someone_{i}", "password": "guess!!!"})
        assert r.status_code == 401
    r = await c.post("/api/auth/login", json={"login": "someone_else", "password": "guess!!!"})
    assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1


async def test_rate_limit_window_is_configurable(app_client, register, assert_problem):
    await register("jack_10")
    c = await app_client(login_failures_per_account=2, login_failure_window_seconds=30)
    for _ in range(2):
        assert (
            await c.post("/api/auth/login", json={"login": "jack_10", "password": "nope nope"})
        ).status_code == 401
    r = await c.post("/api/auth/login", json={"login": "jack_10", "password": "nope nope"})
    assert_problem(r, 429)
    assert 1 <= int(r.headers["retry-after"]) <= 30


# ---- refresh rotation ---------------------------------------------------------------------------


async def refresh(client, token: str):
    return await client.post("/api/auth/refresh", json={"refreshToken": token})


async def test_refresh_rotates_the_pair(client, register, bearer):
    first = await register("kate_11")
    r = await refresh(client, first["refreshToken"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["user"]["id"] == first["user"]["id"]
    assert second["refreshToken"] != first["refreshToken"]
    assert second["accessToken"] != first["accessToken"]
    assert 0 < second["expiresIn"] <= 900
    assert (await client.get("/api/auth/user", headers=bearer(second))).status_code == 200
    third = await refresh(client, second["refreshToken"])
    assert third.status_code == 200


async def test_reusing_a_rotated_token_revokes_the_whole_family(client, register, assert_problem):
    first = await register("liam_12")
    second = (await refresh(client, first["refreshToken"])).json()
    third = (await refresh(client, second["refreshToken"])).json()

    # the first token was already rotated: someone copied it
    assert_problem(await refresh(client, first["refreshToken"]), 401)
    # ... so every token of the family is dead, the newest one included
    assert_problem(await refresh(client, third["refreshToken"]), 401)
    assert_problem(await refresh(client, second["refreshToken"]), 401)


async def test_family_revocation_spares_other_sessions(client, register):
    first = await register("mia_13")
    other = (await client.post("/api/auth/login", json={"login": "mia_13", "password": PASSWORD})).json()
    await refresh(client, first["refreshToken"])
    assert (await refresh(client, first["refreshToken"])).status_code == 401  # reuse
    assert (await refresh(client, other["refreshToken"])).status_code == 200


@pytest.mark.parametrize("token", ["", "x" * 201])
async def test_malformed_refresh_request_is_422(client, assert_problem, token):
    assert_problem(await refresh(client, token), 422, fields=("refreshToken",))


async def test_unknown_refresh_token_is_401(client, assert_problem):
    assert_problem(await refresh(client, "not-a-token-we-issued"), 401)


async def test_expired_refresh_token_is_401(client, register, db, assert_problem):
    first = await register("noah_14")
    async with db() as session:
        await session.execute(text("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'"))
        await session.commit()
    assert_problem(await refresh(client, first["refreshToken"]), 401)


async def test_logout_revokes_the_refresh_token(client, register):
    first = await register("olga_15")
    second = (await refresh(client, first["refreshToken"])).json()
    r = await client.post("/api/auth/logout", json={"refreshToken": second["refreshToken"]})
    assert r.status_code == 204 and r.content == b""
    assert (await refresh(client, second["refreshToken"])).status_code == 401


async def test_logout_ends_only_that_session(client, register):
    first = await register("pete_16")
    other = (await client.post("/api/auth/login", json={"login": "pete_16", "password": PASSWORD})).json()
    assert (
        await client.post("/api/auth/logout", json={"refreshToken": first["refreshToken"]})
    ).status_code == 204
    assert (await refresh(client, other["refreshToken"])).status_code == 200


async def test_logout_with_unknown_token_is_still_204(client):
    r = await client.post("/api/auth/logout", json={"refreshToken": "never-issued"})
    assert r.status_code == 204


async def test_logout_without_token_is_422(client, assert_problem):
    assert_problem(await client.post("/api/auth/logout", json={}), 422, fields=("refreshToken",))


async def test_expired_access_token_is_401(app_client, assert_problem):
    # tokens that expired before they were issued (beyond the verifier's few seconds of leeway)
    c = await app_client(access_token_ttl_seconds=-60)
    r = await c.post("/api/auth/register", json=body("quinn_17"))
    assert r.status_code == 201
    token = r.json()["accessToken"]
    assert jwt.decode(token, options={"verify_signature": False})["exp"] < datetime.now(UTC).timestamp()
    r = await c.get("/api/auth/user", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401)
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")


# ---- text PostgreSQL cannot store or compare (found by the fuzzer: these answered 500) ----------


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/auth/register", body("nul_user", email="a\x00b@example.com"), "email"),
        ("/api/auth/register", body("nul_user", email="ab@example.co\x00"), "email"),
        ("/api/auth/register", body("ctl_user", email="a\x07b@example.com"), "email"),
        ("/api/auth/login", {"login": "a\x00b", "password": PASSWORD}, "login"),
        ("/api/auth/login", {"login": "a@example.com\x00", "password": PASSWORD}, "login"),
    ],
)
async def test_nul_characters_are_refused_not_crashing(client, assert_problem, path, payload, field):
    assert_problem(await client.post(path, json=payload), 422, fields=(field,))


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        (
            "/api/auth/register",
            '{"email": "a\\ud800@example.com", "password": "xxxxxxxxxx", "username": "sur_1"}',
        ),
        (
            "/api/auth/register",
            '{"email": "a@example.com", "password": "xxxxxxxx\\udfff", "username": "sur_2"}',
        ),
        ("/api/auth/login", '{"login": "a\\ud800", "password": "xxxxxxxxxx"}'),
        ("/api/auth/login", '{"login": "someone", "password": "\\ud800xxxxxxxxx"}'),
        ("/api/auth/refresh", '{"refreshToken": "\\ud800"}'),
        ("/api/auth/logout", '{"refreshToken": "\\ud800"}'),
    ],
)
async def test_lone_surrogates_are_refused(client, assert_problem, path, raw):
    r = await client.post(path, content=raw.encode(), headers={"content-type": "application/json"})
    assert_problem(r, 422)


async def test_nul_in_a_refresh_token_is_just_unknown(client, assert_problem):
    assert_problem(await refresh(client, "abc\x00def"), 401)
    assert (await client.post("/api/auth/logout", json={"refreshToken": "abc\x00def"})).status_code == 204


async def test_parallel_guesses_cannot_outrun_the_account_limit(client, register, auth_settings):
    """A burst of concurrent wrong passwords: at most `limit` of them may be checked at all."""
    await register("burst_18")
    guesses = [
        client.post("/api/auth/login", json={"login": "burst_18", "password": f"guess {i:04d}"})
        for i in range(30)
    ]
    statuses = sorted(r.status_code for r in await asyncio.gather(*guesses))
    assert statuses.count(401) <= auth_settings.login_failures_per_account, statuses
    assert set(statuses) == {401, 429}


async def test_parallel_refreshes_of_one_token_yield_one_pair_then_revoke(client, register):
    """Two clients racing with the same refresh token: one wins, the other is a reuse."""
    first = await register("race_19")
    answers = await asyncio.gather(*[refresh(client, first["refreshToken"]) for _ in range(2)])
    assert sorted(r.status_code for r in answers) == [200, 401]
    winner = next(r.json() for r in answers if r.status_code == 200)
    # the loser presented an already-used token: the family, the winner's new token included, is revoked
    assert (await refresh(client, winner["refreshToken"])).status_code == 401


async def test_password_hashing_does_not_stall_the_event_loop(app_client):
    """argon2 at production-like cost takes tens of milliseconds: it must run off the event loop,
    or every other request of the process waits for each login."""
    c = await app_client(argon2_memory_kib=47104, argon2_time_cost=2)
    r = await c.post("/api/auth/register", json=body("stall_20"))
    assert r.status_code == 201

    async def ticker(gaps: list[float], done: asyncio.Event) -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ratios = []
    for _ in range(3):
        gaps, done = [], asyncio.Event()
        task = asyncio.create_task(ticker(gaps, done))
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        r = await c.post("/api/auth/login", json={"login": "stall_20", "password": PASSWORD})
        took = time.perf_counter() - started
        done.set()
        await task
        assert r.status_code == 200
        ratios.append(max(gaps) / took)
    # blocking the loop, the longest pause is nearly the whole login (ratio ~0.9)
    assert min(ratios) < 0.5, ratios
