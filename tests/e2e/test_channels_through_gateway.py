"""A creator registers with auth, creates a channel and reads its stream key through the gateway;
the channel page shows the creator (fed by auth's events over NATS), never the key."""

import pytest

from .helpers import register, until

pytestmark = pytest.mark.e2e


def test_creator_creates_channel_and_gets_key(gateway):
    creator = register(gateway, "cr", displayName="Creator Person")
    name, auth = creator["username"], creator["auth"]

    r = gateway.post("/api/channels", json={"name": f"Speedruns {name}", "category": "games"}, headers=auth)
    assert r.status_code == 201, r.text
    channel = r.json()
    slug = channel["slug"]

    r = gateway.get(f"/api/channels/{channel['id']}/stream-key", headers=auth)
    assert r.status_code == 200
    key = r.json()["streamKey"]
    assert len(key) >= 32 and r.json()["rtmpUrl"].startswith("rtmp://")

    # the creator card is filled from user.registered, relayed by auth's outbox through JetStream
    page = until("the creator on the channel page", lambda: gateway.get(f"/api/channels/{slug}").json(),
                 lambda page: page["creator"].get("username") == name, every=0.2)
    assert page["creator"]["displayName"] == "Creator Person"
    assert key not in gateway.get(f"/api/channels/{slug}").text
    assert key not in gateway.get("/api/channels?limit=100").text

    r = gateway.get(f"/api/channels/{channel['id']}/stream-key")
    assert r.status_code == 401

    listing = gateway.get("/api/channels", params={"q": name}).json()
    assert [c["slug"] for c in listing["items"]] == [slug]

    assert gateway.get("/api/channels/openapi.json").json()["info"]["title"]
