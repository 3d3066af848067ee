"""User-to-user follows and the public profile (links, counts) through the gateway."""

import uuid

import pytest

from .helpers import problem, register

pytestmark = pytest.mark.e2e


def test_follow_unfollow_lists_and_counts(gateway):
    a, b = register(gateway, "f"), register(gateway, "f")
    for _ in range(2):  # idempotent
        r = gateway.post(f"/api/users/{b['id']}/follow", headers=a["auth"])
        assert r.status_code == 204, r.text

    profile = gateway.get(f"/api/users/{b['username']}", headers=a["auth"]).json()
    assert (profile["followerCount"], profile["followingCount"], profile["isFollowing"]) == (1, 0, True)
    assert gateway.get(f"/api/users/{a['id']}").json()["followingCount"] == 1

    followers = gateway.get(f"/api/users/{b['id']}/followers")
    assert followers.status_code == 200
    assert [u["id"] for u in followers.json()["items"]] == [a["id"]]
    following = gateway.get(f"/api/users/{a['id']}/following")
    assert following.status_code == 200
    assert [u["id"] for u in following.json()["items"]] == [b["id"]]

    assert gateway.delete(f"/api/users/{b['id']}/follow", headers=a["auth"]).status_code == 204
    assert gateway.get(f"/api/users/{b['id']}/followers").json()["items"] == []
    assert gateway.get(f"/api/users/{b['id']}", headers=a["auth"]).json()["isFollowing"] is False


def test_follow_refusals_are_problems(gateway):
    me = register(gateway, "f")
    body = problem(gateway.post(f"/api/users/{me['id']}/follow", headers=me["auth"]), 422)
    assert body["errors"][0]["field"] == "user_id"
    problem(gateway.post(f"/api/users/{uuid.uuid4()}/follow", headers=me["auth"]), 404)
    problem(gateway.delete(f"/api/users/{uuid.uuid4()}/follow", headers=me["auth"]), 404)
    problem(gateway.post(f"/api/users/{me['id']}/follow"), 401)
    problem(gateway.get(f"/api/users/{uuid.uuid4()}/followers"), 404)
    problem(gateway.get(f"/api/users/{uuid.uuid4()}/following"), 404)


def test_social_links_are_http_only_and_public(gateway):
    me = register(gateway, "f")
    for bad in ("javascript:alert(1)", "data:text/html,hi", "ftp://example.com/x"):
        body = problem(gateway.put("/api/auth/profile", headers=me["auth"],
                                    json={"socialLinks": {"site": bad}}), 422)
        assert any(e["field"].startswith("socialLinks") for e in body["errors"])
    r = gateway.put("/api/auth/profile", headers=me["auth"],
                    json={"socialLinks": {"site": "https://example.org/me"}, "notificationEmail": "n@example.org"})
    assert r.status_code == 200, r.text
    public = gateway.get(f"/api/users/{me['id']}").json()
    assert public["socialLinks"] == {"site": "https://example.org/me"}
    assert "notificationEmail" not in str(public) and "email" not in public
    body = problem(gateway.put("/api/auth/profile", headers=me["auth"], json={"notificationEmail": "nope"}), 422)
    assert body["errors"][0]["field"] == "notificationEmail"
