"""The caller's own account (GET /api/auth/user, onboard, profile) and public profiles."""

import uuid

import pytest

PUBLIC_FIELDS = {"id", "username", "displayName", "avatar", "bio", "createdAt"}
PROFILE_DEFAULTS = {"socialLinks": {}, "theme": "dark", "language": "en", "notificationEmail": None}


async def me(client, bearer, user):
    r = await client.get("/api/auth/user", headers=bearer(user))
    assert r.status_code == 200, r.text
    return r.json()


async def test_current_user_shape(client, register, bearer):
    user = await register("shape_1", displayName="Shape One")
    body = await me(client, bearer, user)
    assert body.keys() == PUBLIC_FIELDS | {"email", "onboarded", "profile"}
    assert body["id"] == user["user"]["id"]
    assert body["email"] == "shape_1@example.com"
    assert body["displayName"] == "Shape One"
    assert body["profile"] == PROFILE_DEFAULTS


async def test_current_user_requires_a_token(client, assert_problem):
    assert_problem(await client.get("/api/auth/user"), 401)


async def test_token_of_a_deleted_account_is_refused(client, register, bearer, db, assert_problem):
    from sqlalchemy import text

    user = await register("deleted_1")
    async with db() as session:
        await session.execute(text("DELETE FROM users WHERE username = 'deleted_1'"))
        await session.commit()
    assert_problem(await client.get("/api/auth/user", headers=bearer(user)), 401)


# ---- onboarding ---------------------------------------------------------------------------------


async def test_onboard_sets_profile_and_flag(client, register, bearer):
    user = await register("onboard_1")
    r = await client.post(
        "/api/auth/onboard",
        headers=bearer(user),
        json={
            "displayName": "  Onboarded Person  ",
            "bio": "I stream chess.",
            "socialLinks": {"twitter": "https://twitter.com/onboard_1", "site": "https://example.org/me"},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["onboarded"] is True
    assert body["displayName"] == "Onboarded Person"  # trimmed
    assert body["bio"] == "I stream chess."
    links = body["profile"]["socialLinks"]
    assert links.keys() == {"twitter", "site"}
    assert links["twitter"].startswith("https://twitter.com/onboard_1")
    assert links["site"] == "https://example.org/me"
    assert await me(client, bearer, user) == body  # persisted


async def test_onboard_needs_a_display_name(client, register, bearer, assert_problem):
    user = await register("onboard_2")
    assert_problem(
        await client.post("/api/auth/onboard", headers=bearer(user), json={"bio": "x"}),
        422,
        fields=("displayName",),
    )
    assert_problem(
        await client.post("/api/auth/onboard", headers=bearer(user), json={"displayName": "   "}),
        422,
        fields=("displayName",),
    )
    assert (await me(client, bearer, user))["onboarded"] is False


async def test_onboard_requires_a_token(client, assert_problem):
    assert_problem(await client.post("/api/auth/onboard", json={"displayName": "X"}), 401)


# ---- profile updates ----------------------------------------------------------------------------


async def test_profile_update_is_partial(client, register, bearer):
    user = await register("profile_1", displayName="Before")
    await client.post(
        "/api/auth/onboard",
        headers=bearer(user),
        json={"displayName": "Before", "bio": "old bio", "socialLinks": {"gh": "https://github.com/p1"}},
    )
    r = await client.put("/api/auth/profile", headers=bearer(user), json={"theme": "light"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["profile"]["theme"] == "light"
    # nothing else moved
    assert body["displayName"] == "Before" and body["bio"] == "old bio"
    assert body["profile"]["language"] == "en" and body["profile"]["notificationEmail"] is None
    assert body["profile"]["socialLinks"] == {"gh": "https://github.com/p1"}
    assert body["onboarded"] is True

    r = await client.put(
        "/api/auth/profile",
        headers=bearer(user),
        json={"language": "pt-BR", "notificationEmail": "alerts@example.org", "displayName": "After"},
    )
    body = r.json()
    assert body["profile"] == {
        "socialLinks": {"gh": "https://github.com/p1"},
        "theme": "light",
        "language": "pt-BR",
        "notificationEmail": "alerts@example.org",
    }
    assert body["displayName"] == "After"
    assert await me(client, bearer, user) == body


async def test_profile_can_clear_bio_and_links(client, register, bearer):
    user = await register("profile_2")
    await client.put(
        "/api/auth/profile",
        headers=bearer(user),
        json={"bio": "something", "socialLinks": {"a": "https://a.example.com/"}},
    )
    body = (
        await client.put("/api/auth/profile", headers=bearer(user), json={"bio": "", "socialLinks": {}})
    ).json()
    assert body["bio"] == "" and body["profile"]["socialLinks"] == {}


async def test_empty_profile_update_changes_nothing(client, register, bearer):
    user = await register("profile_3")
    before = await me(client, bearer, user)
    r = await client.put("/api/auth/profile", headers=bearer(user), json={})
    assert r.status_code == 200 and r.json() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"socialLinks": {"twitter": "not a url"}}, "socialLinks"),
        ({"socialLinks": {"twitter": "javascript:alert(1)"}}, "socialLinks"),
        ({"socialLinks": {"twitter": "ftp://example.com/x"}}, "socialLinks"),
        ({"socialLinks": {"bad key!": "https://example.com"}}, "socialLinks"),
        ({"socialLinks": {f"l{i}": f"https://example.com/{i}" for i in range(11)}}, "socialLinks"),
        ({"socialLinks": ["https://example.com"]}, "socialLinks"),
        ({"theme": "purple"}, "theme"),
        ({"language": "English"}, "language"),
        ({"language": "e"}, "language"),
        ({"notificationEmail": "sometimes"}, "notificationEmail"),
        ({"notificationEmail": True}, "notificationEmail"),
        ({"notificationEmail": "two@at@example.com"}, "notificationEmail"),
        ({"notificationEmail": "nul\x00@example.com"}, "notificationEmail"),
        ({"displayName": ""}, "displayName"),
        ({"displayName": "x" * 51}, "displayName"),
        ({"displayName": "line\x00break"}, "displayName"),
        ({"bio": "b" * 501}, "bio"),
        ({"bio": "escape \x1b[31m"}, "bio"),
    ],
)
async def test_invalid_profile_update_is_422(client, register, bearer, assert_problem, changes, field):
    user = await register("profile_bad")
    before = await me(client, bearer, user)
    r = await client.put("/api/auth/profile", headers=bearer(user), json=changes)
    assert_problem(r, 422, fields=(field,))
    assert await me(client, bearer, user) == before


async def test_notification_email_is_an_address_that_can_be_cleared(client, register, bearer):
    """API.md: `profile.notificationEmail` is an e-mail address or null (issue 14 item 17)."""
    user = await register("notify_1")
    r = await client.put("/api/auth/profile", headers=bearer(user), json={"notificationEmail": " news@example.com "})
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["notificationEmail"] == "news@example.com"
    assert (await me(client, bearer, user))["profile"]["notificationEmail"] == "news@example.com"

    # another change leaves it alone; an explicit null clears it
    r = await client.put("/api/auth/profile", headers=bearer(user), json={"theme": "light"})
    assert r.json()["profile"]["notificationEmail"] == "news@example.com"
    r = await client.put("/api/auth/profile", headers=bearer(user), json={"notificationEmail": None})
    assert r.status_code == 200, r.text
    assert (await me(client, bearer, user))["profile"]["notificationEmail"] is None


async def test_bio_may_contain_newlines_and_tabs(client, register, bearer):
    user = await register("profile_4")
    r = await client.put("/api/auth/profile", headers=bearer(user), json={"bio": "line one\n\tline two"})
    assert r.status_code == 200 and r.json()["bio"] == "line one\n\tline two"


async def test_profile_update_requires_a_token(client, assert_problem):
    assert_problem(await client.put("/api/auth/profile", json={"theme": "light"}), 401)


# ---- /api/users/{id} ----------------------------------------------------------------------------


async def test_public_profile_has_no_private_fields(client, register, bearer):
    user = await register("public_1", displayName="Public One")
    await client.put("/api/auth/profile", headers=bearer(user), json={
        "bio": "hello", "socialLinks": {"site": "https://example.org/p"}, "notificationEmail": "n@example.org"})
    r = await client.get(f"/api/users/{user['user']['id']}")  # no token needed
    assert r.status_code == 200
    body = r.json()
    # the public profile adds its links and follow counts; never the e-mails, theme or language
    assert body.keys() == PUBLIC_FIELDS | {"socialLinks", "followerCount", "followingCount", "isFollowing"}
    assert body == {
        "socialLinks": {"site": "https://example.org/p"}, "followerCount": 0, "followingCount": 0,
        "isFollowing": None,
        "id": user["user"]["id"],
        "username": "public_1",
        "displayName": "Public One",
        "avatar": None,
        "bio": "hello",
        "createdAt": user["user"]["createdAt"],
    }
    assert "example.com" not in r.text  # the email leaks nowhere


@pytest.mark.parametrize(
    "user_id", [str(uuid.uuid4()), "not-a-uuid", "123", "me", "00000000-0000-0000-0000-000000000000"]
)
async def test_unknown_or_malformed_user_is_404(client, assert_problem, user_id):
    assert_problem(await client.get(f"/api/users/{user_id}"), 404)


async def test_user_id_is_accepted_in_other_uuid_spellings(client, register):
    user = await register("public_2")
    uid = user["user"]["id"]
    for spelling in (uid.upper(), uid.replace("-", "")):
        r = await client.get(f"/api/users/{spelling}")
        assert r.status_code == 200 and r.json()["id"] == uid


async def test_public_profile_by_username(client, register, assert_problem):
    user = await register("public_3")
    for value in ("public_3", "@public_3"):
        r = await client.get(f"/api/users/{value}")
        assert r.status_code == 200 and r.json()["id"] == user["user"]["id"]
    assert_problem(await client.get("/api/users/PUBLIC_3"), 404)  # usernames are exact
    assert_problem(await client.get("/api/users/@nobody_here"), 404)


async def test_put_own_user_updates_profile(client, register, bearer):
    user = await register("put_self")
    r = await client.put(
        f"/api/users/{user['user']['id']}", headers=bearer(user), json={"bio": "via users", "theme": "system"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["bio"] == "via users" and r.json()["profile"]["theme"] == "system"
    assert (await me(client, bearer, user))["bio"] == "via users"


async def test_put_another_user_is_403_and_changes_nothing(client, register, bearer, assert_problem):
    owner = await register("put_owner")
    intruder = await register("put_intruder")
    r = await client.put(f"/api/users/{owner['user']['id']}", headers=bearer(intruder), json={"bio": "pwned"})
    assert_problem(r, 403)
    assert (await client.get(f"/api/users/{owner['user']['id']}")).json()["bio"] == ""
    assert (await me(client, bearer, intruder))["bio"] == ""


async def test_put_user_requires_a_token(client, register, assert_problem):
    owner = await register("put_anon")
    assert_problem(await client.put(f"/api/users/{owner['user']['id']}", json={"bio": "x"}), 401)


async def test_put_user_validates_like_profile(client, register, bearer, assert_problem):
    user = await register("put_invalid")
    r = await client.put(
        f"/api/users/{user['user']['id']}", headers=bearer(user), json={"socialLinks": {"x": "nope"}}
    )
    assert_problem(r, 422, fields=("socialLinks",))
