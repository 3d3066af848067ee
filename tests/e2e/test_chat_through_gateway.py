"""Chat REST through the gateway: a viewer chats in a creator's channel; the channels service's
moderation (filters, bans) reaches chat over NATS and applies at once; history, deletion and
reports; the routes that share prefixes with streams and channels reach chat."""

import time
import uuid

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


def test_chat_with_moderation_history_and_reports(gateway):
    _, creator = _register(gateway, "chatc")
    viewer_id, viewer = _register(gateway, "chatv")
    r = gateway.post("/api/channels", json={"name": f"Chat {uuid.uuid4().hex[:6]}"}, headers=creator)
    assert r.status_code == 201, r.text
    channel_id = r.json()["id"]

    accepted = []  # what history must hold: every 201, in order (probes included)

    def send(content, headers=viewer, **extra):
        r = gateway.post("/api/messages", json={"channelId": channel_id, "content": content, **extra},
                         headers=headers)
        if r.status_code == 201 and r.json()["id"] not in [m["id"] for m in accepted]:
            accepted.append(r.json())
        return r

    # chat hears of the channel through channel.created
    first = _until(lambda: send("hello", nonce="e2e-1"), lambda r: r.status_code == 201, what="chat to know the channel")
    message = first.json()
    assert message["user"]["id"] == viewer_id and message["seq"] >= 1
    assert send("hello", nonce="e2e-1").json()["id"] == message["id"]  # resend: same message

    # a ban through channels applies in chat at once
    r = gateway.post(f"/api/channels/{channel_id}/bans", json={"userId": viewer_id}, headers=creator)
    assert r.status_code == 201, r.text
    banned = _until(lambda: send("still here?"), lambda r: r.status_code == 403, timeout=5, what="the ban")
    assert banned.headers["content-type"].startswith("application/problem+json")
    assert gateway.delete(f"/api/channels/{channel_id}/bans/{viewer_id}", headers=creator).status_code == 204
    _until(lambda: send("back"), lambda r: r.status_code == 201, timeout=5, what="the unban")

    # filters through channels (they reach chat after the channels outbox relayed the event)
    r = gateway.put(f"/api/channels/{channel_id}/filters", headers=creator,
                    json={"bannedWords": ["forbidden"], "profanityFilter": False, "slowModeSeconds": 0,
                          "followersOnly": False})
    assert r.status_code == 200, r.text
    filtered = _until(lambda: send("a forbidden word"), lambda r: r.status_code == 422, timeout=5, what="filters")
    assert filtered.json()["type"].endswith(":filtered")

    # history through the regex route that wins over /api/channels/
    items = gateway.get(f"/api/channels/{channel_id}/messages").json()["items"]
    assert [m["id"] for m in items] == [m["id"] for m in accepted]
    assert gateway.delete(f"/api/messages/{message['id']}", headers=viewer).status_code == 204
    _until(lambda: gateway.get(f"/api/channels/{channel_id}/messages").json()["items"],
           lambda items: [m["id"] for m in items] == [m["id"] for m in accepted[1:]], timeout=5,
           what="the deletion in history")

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
