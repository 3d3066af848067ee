"""Subscriptions through the gateway (API.md Extensions): subscribe, change, cancel in channels;
the subscription.* events reach chat over NATS, which shows the `subscriber:<TIER>` badge and
applies the channel's subscribers-only filter; the owner's list; the refusals as problem+json."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.e2e


def _register(gateway, prefix: str) -> tuple[str, dict]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    r = gateway.post("/api/auth/register", json={"email": f"{name}@example.com", "password": "s3cret-passw0rd",
                                                 "username": name})
    assert r.status_code == 201, r.text
    return r.json()["user"]["id"], {"Authorization": f"Bearer {r.json()['accessToken']}"}


def _until(fn, predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if predicate(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {result!r}")
        time.sleep(0.1)


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def test_subscribe_badge_subscribers_only_and_cancel(gateway):
    owner_id, owner = _register(gateway, "subo")
    viewer_id, viewer = _register(gateway, "subv")
    _, stranger = _register(gateway, "subs")
    r = gateway.post("/api/channels", json={"name": f"Subs {uuid.uuid4().hex[:6]}"}, headers=owner)
    assert r.status_code == 201, r.text
    channel_id = r.json()["id"]
    url = f"/api/channels/{channel_id}/subscription"

    def send(headers, content="hi"):
        return gateway.post("/api/messages", json={"channelId": channel_id, "content": content}, headers=headers)

    first = _until(lambda: send(viewer), lambda r: r.status_code == 201, what="chat to know the channel")
    assert first.json()["user"]["badges"] == []

    _problem(gateway.get(url, headers=viewer), 404)
    r = gateway.post(url, json={"tier": "VIP"}, headers=viewer)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert (sub["tier"], sub["status"], sub["userId"]) == ("VIP", "ACTIVE", viewer_id)
    renewal = datetime.fromisoformat(sub["renewalDate"].replace("Z", "+00:00"))
    assert abs(renewal - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)
    assert gateway.get(url, headers=viewer).json() == sub

    # the event reaches chat: the next message carries the badge with the tier
    badged = _until(lambda: send(viewer), lambda r: r.status_code == 201 and r.json()["user"]["badges"]
                    == ["subscriber:VIP"], timeout=10, what="the subscriber badge")
    assert badged.json()["user"]["id"] == viewer_id

    # a tier change keeps the date
    r = gateway.post(url, json={"tier": "BASIC"}, headers=viewer)
    assert r.status_code == 200 and r.json()["renewalDate"] == sub["renewalDate"]
    _until(lambda: send(viewer), lambda r: r.json()["user"]["badges"] == ["subscriber:BASIC"], timeout=10,
           what="the new tier's badge")

    # subscribers-only: a filter of the channel, set by the owner, applied by chat
    r = gateway.put(f"/api/channels/{channel_id}/filters", json={"subscribersOnly": True}, headers=owner)
    assert r.status_code == 200 and r.json()["subscribersOnly"] is True
    refused = _until(lambda: send(stranger), lambda r: r.status_code == 403, timeout=10, what="subscribers-only")
    assert _problem(refused, 403)["type"].endswith(":subscribers_only")
    assert send(viewer).status_code == 201
    assert send(owner).json()["user"]["badges"] == ["owner"]

    # the owner sees their subscribers; nobody else does
    page = gateway.get(f"/api/channels/{channel_id}/subscriptions", headers=owner).json()
    assert page["count"] == 1 and [i["user"]["id"] for i in page["items"]] == [viewer_id]
    _problem(gateway.get(f"/api/channels/{channel_id}/subscriptions", headers=viewer), 403)

    # cancelled: still a subscriber until the renewal date
    r = gateway.delete(url, headers=viewer)
    assert r.status_code == 200 and (r.json()["status"], r.json()["renewalDate"]) == ("CANCELLED", sub["renewalDate"])
    time.sleep(0.5)
    kept = send(viewer)
    assert kept.status_code == 201 and kept.json()["user"]["badges"] == ["subscriber:BASIC"]


def test_subscription_refusals_are_problems(gateway):
    _, owner = _register(gateway, "subr")
    _, viewer = _register(gateway, "subq")
    channel_id = gateway.post("/api/channels", json={"name": f"Subr {uuid.uuid4().hex[:6]}"}, headers=owner).json()["id"]
    url = f"/api/channels/{channel_id}/subscription"
    _problem(gateway.post(url, json={"tier": "VIP"}), 401)
    _problem(gateway.get(url), 401)
    _problem(gateway.delete(url), 401)
    body = _problem(gateway.post(url, json={"tier": "GOLD"}, headers=viewer), 422)
    assert body["errors"][0]["field"] == "tier"
    assert "own channel" in _problem(gateway.post(url, json={"tier": "VIP"}, headers=owner), 422)["detail"]
    _problem(gateway.post(f"/api/channels/{uuid.uuid4()}/subscription", json={"tier": "VIP"}, headers=viewer), 404)
    _problem(gateway.delete(url, headers=viewer), 404)
