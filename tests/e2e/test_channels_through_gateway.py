"""A creator registers with auth, creates a channel and reads its stream key through the gateway;
the channel page shows the creator (fed by auth's events over NATS), never the key."""

import time
import uuid

import pytest

pytestmark = pytest.mark.e2e


def test_creator_creates_channel_and_gets_key(gateway):
    name = f"cr_{uuid.uuid4().hex[:8]}"
    r = gateway.post("/api/auth/register", json={"email": f"{name}@example.com", "password": "s3cret-passw0rd",
                                                 "username": name, "displayName": "Creator Person"})
    assert r.status_code == 201, r.text
    auth = {"Authorization": f"Bearer {r.json()['accessToken']}"}

    r = gateway.post("/api/channels", json={"name": f"Speedruns {name}", "category": "games"}, headers=auth)
    assert r.status_code == 201, r.text
    channel = r.json()
    slug = channel["slug"]

    r = gateway.get(f"/api/channels/{channel['id']}/stream-key", headers=auth)
    assert r.status_code == 200
    key = r.json()["streamKey"]
    assert len(key) >= 32 and r.json()["rtmpUrl"].startswith("rtmp://")

    # the creator card is filled from user.registered, relayed by auth's outbox through JetStream
    deadline = time.monotonic() + 15
    page = None
    while time.monotonic() < deadline:
        page = gateway.get(f"/api/channels/{slug}").json()
        if page["creator"].get("username") == name:
            break
        time.sleep(0.2)
    assert page["creator"]["username"] == name
    assert page["creator"]["displayName"] == "Creator Person"
    assert key not in gateway.get(f"/api/channels/{slug}").text
    assert key not in gateway.get("/api/channels?limit=100").text

    r = gateway.get(f"/api/channels/{channel['id']}/stream-key")
    assert r.status_code == 401

    listing = gateway.get("/api/channels", params={"q": name}).json()
    assert [c["slug"] for c in listing["items"]] == [slug]

    assert gateway.get("/api/channels/openapi.json").json()["info"]["title"]
