"""Subscriptions through the gateway (API.md Extensions): subscribe, change, cancel in channels;
the subscription.* events reach chat over NATS, which shows the `subscriber:<TIER>` badge and
applies the channel's subscribers-only filter; the owner's list; the refusals as problem+json."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from .helpers import create_channel, problem, register, until

pytestmark = pytest.mark.e2e


def _register(gateway, prefix: str) -> tuple[str, dict]:
    user = register(gateway, prefix)
    return user["id"], user["auth"]


def test_subscribe_badge_subscribers_only_and_cancel(gateway):
    owner_id, owner = _register(gateway, "subo")
    viewer_id, viewer = _register(gateway, "subv")
    _, stranger = _register(gateway, "subs")
    channel_id = create_channel(gateway, owner, f"Subs {uuid.uuid4().hex[:6]}")["id"]
    url = f"/api/channels/{channel_id}/subscription"

    def send(headers, content="hi"):
        return gateway.post("/api/messages", json={"channelId": channel_id, "content": content}, headers=headers)

    first = until("chat to know the channel", lambda: send(viewer), lambda r: r.status_code == 201)
    assert first.json()["user"]["badges"] == []

    problem(gateway.get(url, headers=viewer), 404)
    r = gateway.post(url, json={"tier": "VIP"}, headers=viewer)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert (sub["tier"], sub["status"], sub["userId"]) == ("VIP", "ACTIVE", viewer_id)
    renewal = datetime.fromisoformat(sub["renewalDate"].replace("Z", "+00:00"))
    assert abs(renewal - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)
    assert gateway.get(url, headers=viewer).json() == sub

    # the event reaches chat: the next message carries the badge with the tier
    badged = until("the subscriber badge", lambda: send(viewer), lambda r: r.status_code == 201
                   and r.json()["user"]["badges"] == ["subscriber:VIP"], timeout=10)
    assert badged.json()["user"]["id"] == viewer_id

    # a tier change keeps the date
    r = gateway.post(url, json={"tier": "BASIC"}, headers=viewer)
    assert r.status_code == 200 and r.json()["renewalDate"] == sub["renewalDate"]
    until("the new tier's badge", lambda: send(viewer), lambda r: r.json()["user"]["badges"] == ["subscriber:BASIC"],
          timeout=10)

    # subscribers-only: a filter of the channel, set by the owner, applied by chat
    r = gateway.put(f"/api/channels/{channel_id}/filters", json={"subscribersOnly": True}, headers=owner)
    assert r.status_code == 200 and r.json()["subscribersOnly"] is True
    refused = until("subscribers-only", lambda: send(stranger), lambda r: r.status_code == 403, timeout=10)
    assert problem(refused, 403)["type"].endswith(":subscribers_only")
    assert send(viewer).status_code == 201
    assert send(owner).json()["user"]["badges"] == ["owner"]

    # the owner sees their subscribers; nobody else does
    page = gateway.get(f"/api/channels/{channel_id}/subscriptions", headers=owner).json()
    assert page["count"] == 1 and [i["user"]["id"] for i in page["items"]] == [viewer_id]
    problem(gateway.get(f"/api/channels/{channel_id}/subscriptions", headers=viewer), 403)

    # cancelled: still a subscriber until the renewal date
    r = gateway.delete(url, headers=viewer)
    assert r.status_code == 200 and (r.json()["status"], r.json()["renewalDate"]) == ("CANCELLED", sub["renewalDate"])
    time.sleep(0.5)
    kept = send(viewer)
    assert kept.status_code == 201 and kept.json()["user"]["badges"] == ["subscriber:BASIC"]


def test_subscription_refusals_are_problems(gateway):
    _, owner = _register(gateway, "subr")
    _, viewer = _register(gateway, "subq")
    channel_id = create_channel(gateway, owner, f"Subr {uuid.uuid4().hex[:6]}")["id"]
    url = f"/api/channels/{channel_id}/subscription"
    problem(gateway.post(url, json={"tier": "VIP"}), 401)
    problem(gateway.get(url), 401)
    problem(gateway.delete(url), 401)
    body = problem(gateway.post(url, json={"tier": "GOLD"}, headers=viewer), 422)
    assert body["errors"][0]["field"] == "tier"
    assert "own channel" in problem(gateway.post(url, json={"tier": "VIP"}, headers=owner), 422)["detail"]
    problem(gateway.post(f"/api/channels/{uuid.uuid4()}/subscription", json={"tier": "VIP"}, headers=viewer), 404)
    problem(gateway.delete(url, headers=viewer), 404)
