"""Read-your-writes across services: once `POST /api/channels` answered 201, every service knows
the channel. Streams and chat keep replicas fed by `channel.created`, which reaches them a moment
later; a replica miss asks channels (`channels.get`) before answering 404."""

import uuid

import pytest

from .helpers import create_channel, register

pytestmark = pytest.mark.e2e

ROUNDS = 50


def test_go_live_right_after_creating_the_channel_never_answers_404(gateway):
    answers = []
    for n in range(ROUNDS):
        auth = register(gateway, "ryw")["auth"]
        channel_id = create_channel(gateway, auth)["id"]
        # the two ways to go live, alternately, each the very next request after the 201
        if n % 2:
            r = gateway.post("/api/streams", json={"channelId": channel_id, "title": "at once"}, headers=auth)
        else:
            r = gateway.post(f"/api/streams/{channel_id}/start", headers=auth)
        answers.append((r.status_code, r.text[:200]))
    failures = [a for a in answers if a[0] not in (200, 201)]
    assert failures == [], f"{len(failures)} of {ROUNDS}: {failures[:5]}"


def test_chat_send_right_after_creating_the_channel_never_answers_404(gateway):
    answers = []
    for _ in range(ROUNDS // 2):
        auth = register(gateway, "ryw")["auth"]
        channel_id = create_channel(gateway, auth)["id"]
        r = gateway.post("/api/messages", json={"channelId": channel_id, "content": "first!"}, headers=auth)
        answers.append((r.status_code, r.text[:200]))
        r = gateway.get(f"/api/channels/{channel_id}/messages")
        answers.append((r.status_code, r.text[:200]))
    failures = [a for a in answers if a[0] not in (200, 201)]
    assert failures == [], f"{len(failures)} of {len(answers)}: {failures[:5]}"


def test_an_unknown_channel_still_answers_404(gateway):
    auth = register(gateway, "ryw")["auth"]
    missing = str(uuid.uuid4())
    r = gateway.post(f"/api/streams/{missing}/start", headers=auth)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = gateway.post("/api/messages", json={"channelId": missing, "content": "hello?"}, headers=auth)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
