"""Chat REST through the gateway: a viewer chats in a creator's channel; the channels service's
moderation (filters, bans) reaches chat over NATS and applies at once; history, deletion and
reports; the routes that share prefixes with streams and channels reach chat."""

import uuid

import pytest

from .helpers import create_channel, register, until

pytestmark = pytest.mark.e2e


def test_chat_with_moderation_history_and_reports(gateway):
    creator = register(gateway, "chatc")["auth"]
    viewer_user = register(gateway, "chatv")
    viewer_id, viewer = viewer_user["id"], viewer_user["auth"]
    channel_id = create_channel(gateway, creator, f"Chat {uuid.uuid4().hex[:6]}")["id"]

    accepted = []  # what history must hold: every 201, in order (probes included)

    def send(content, headers=viewer, **extra):
        r = gateway.post("/api/messages", json={"channelId": channel_id, "content": content, **extra},
                         headers=headers)
        if r.status_code == 201 and r.json()["id"] not in [m["id"] for m in accepted]:
            accepted.append(r.json())
        return r

    # chat hears of the channel through channel.created
    first = until("chat to know the channel", lambda: send("hello", nonce="e2e-1"), lambda r: r.status_code == 201)
    message = first.json()
    assert message["user"]["id"] == viewer_id and message["seq"] >= 1
    assert send("hello", nonce="e2e-1").json()["id"] == message["id"]  # resend: same message

    # a ban through channels applies in chat at once
    r = gateway.post(f"/api/channels/{channel_id}/bans", json={"userId": viewer_id}, headers=creator)
    assert r.status_code == 201, r.text
    banned = until("the ban", lambda: send("still here?"), lambda r: r.status_code == 403, timeout=5)
    assert banned.headers["content-type"].startswith("application/problem+json")
    assert gateway.delete(f"/api/channels/{channel_id}/bans/{viewer_id}", headers=creator).status_code == 204
    until("the unban", lambda: send("back"), lambda r: r.status_code == 201, timeout=5)

    # filters through channels (they reach chat after the channels outbox relayed the event)
    r = gateway.put(f"/api/channels/{channel_id}/filters", headers=creator,
                    json={"bannedWords": ["forbidden"], "profanityFilter": False, "slowModeSeconds": 0,
                          "followersOnly": False})
    assert r.status_code == 200, r.text
    filtered = until("filters", lambda: send("a forbidden word"), lambda r: r.status_code == 422, timeout=5)
    assert filtered.json()["type"].endswith(":filtered")

    # history through the regex route that wins over /api/channels/
    items = gateway.get(f"/api/channels/{channel_id}/messages").json()["items"]
    assert [m["id"] for m in items] == [m["id"] for m in accepted]
    assert gateway.delete(f"/api/messages/{message['id']}", headers=viewer).status_code == 204
    until("the deletion in history", lambda: gateway.get(f"/api/channels/{channel_id}/messages").json()["items"],
          lambda items: [m["id"] for m in items] == [m["id"] for m in accepted[1:]], timeout=5)

    r = gateway.post("/api/reports", headers=creator, json={"channelId": channel_id, "userId": viewer_id,
                                                            "reason": "e2e"})
    assert r.status_code == 201, r.text
    reports = gateway.get(f"/api/channels/{channel_id}/reports", headers=creator).json()["items"]
    assert [x["id"] for x in reports] == [r.json()["id"]]
    assert gateway.patch(f"/api/reports/{r.json()['id']}", headers=creator,
                         json={"status": "dismissed"}).json()["status"] == "dismissed"

    # stream routes: unknown stream is chat's 404, not the streams service's
    r = gateway.get(f"/api/streams/{uuid.uuid4()}/messages")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert gateway.get("/api/chat/openapi.json").json()["info"]["title"] == "Chat service"
