"""Domain events: staged in the outbox with the change, relayed to JetStream stream EVENTS."""

import asyncio
from dataclasses import dataclass

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import text

from contracts.envelope import MSG_ID_HEADER, Envelope, parse_event

STREAM = "EVENTS"


@dataclass
class Published:
    subject: str
    headers: dict
    event: Envelope


class EventLog:
    """What the outbox relay published, read straight from the stream (by sequence)."""

    def __init__(self, js):
        self.js = js

    async def all(self) -> list[Published]:
        info = await self.js.stream_info(STREAM)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await self.js.get_msg(STREAM, seq)
            except NotFoundError:
                continue
            out.append(Published(msg.subject, msg.headers or {}, parse_event(msg.data)))
        return out

    async def wait_for(self, count: int, within: float = 10.0) -> list[Published]:
        """Wait until at least `count` events are in the stream; returns all of them."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            info = await self.js.stream_info(STREAM)
            if info.state.messages >= count:
                return await self.all()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{info.state.messages} events published, expected {count}: {await self.all()}"
                )
            await asyncio.sleep(0.05)


@pytest.fixture
async def events(auth_app, nats_url):
    nc = await nats.connect(nats_url)
    try:
        yield EventLog(nc.jetstream())
    finally:
        await nc.close()


async def relay_pass(auth_app) -> int:
    """Run one relay pass now (besides the background one) so "nothing was published" is checked
    after the relay looked, not before."""
    return await auth_app.state.runtime.relay.publish_pending()


async def outbox_rows(db) -> list[tuple[str, bool]]:
    async with db() as session:
        rows = (
            await session.execute(
                text("SELECT event_type, published_at IS NOT NULL FROM outbox ORDER BY created_at, id")
            )
        ).all()
    return [(t, p) for t, p in rows]


async def test_registration_publishes_user_registered(client, register, events, db):
    user = await register("evt_reg", displayName="Event Person")
    [published] = await events.wait_for(1)
    event = published.event
    assert published.subject == "user.registered"
    assert event.type == "user.registered" and event.source == "auth"
    assert event.subject == user["user"]["id"]
    assert event.dataschema.endswith("user.registered:v1")
    assert event.data.user_id == user["user"]["id"]
    assert event.data.username == "evt_reg"
    assert event.data.display_name == "Event Person"
    assert event.data.avatar is None
    # the event id is JetStream's dedup key
    assert published.headers[MSG_ID_HEADER] == event.id
    assert published.headers.get("Ce-Type") == "user.registered"
    # no private data travels with it
    raw = event.to_json_bytes()
    assert b"example.com" not in raw and b"password" not in raw.lower()
    # the outbox row that carried it is marked as sent
    assert await outbox_rows(db) == [("user.registered", True)]


async def test_failed_registration_publishes_nothing(client, register, events, db, auth_app):
    await register("evt_dup")
    await events.wait_for(1)
    for payload in (
        {"email": "other@example.com", "username": "evt_dup", "password": "long enough"},
        {"email": "EVT_DUP@example.com", "username": "evt_other", "password": "long enough"},
        {"email": "bad", "username": "evt_bad", "password": "long enough"},
    ):
        r = await client.post("/api/auth/register", json=payload)
        assert r.status_code in (409, 422)
    assert await relay_pass(auth_app) == 0
    assert await outbox_rows(db) == [("user.registered", True)]
    assert [p.event.type for p in await events.all()] == ["user.registered"]


async def test_profile_changes_publish_user_updated(client, register, bearer, events):
    user = await register("evt_upd")
    await client.post("/api/auth/onboard", headers=bearer(user), json={"displayName": "Onboarded"})
    await client.put("/api/auth/profile", headers=bearer(user), json={"displayName": "Renamed"})
    published = await events.wait_for(3)
    assert [p.event.type for p in published] == ["user.registered", "user.updated", "user.updated"]
    assert [p.event.data.display_name for p in published] == ["evt_upd", "Onboarded", "Renamed"]
    assert all(p.event.data.user_id == user["user"]["id"] for p in published)
    assert len({p.event.id for p in published}) == 3
    assert all(p.headers[MSG_ID_HEADER] == p.event.id for p in published)


async def test_avatar_upload_publishes_user_updated_with_the_url(client, register, bearer, events):
    import io

    from PIL import Image

    user = await register("evt_avatar")
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(out, format="PNG")
    r = await client.post(
        "/api/upload/avatar", headers=bearer(user), files={"file": ("a.png", out.getvalue(), "image/png")}
    )
    assert r.status_code == 200
    published = await events.wait_for(2)
    assert published[-1].event.type == "user.updated"
    assert published[-1].event.data.avatar == r.json()["url"]


async def test_invalid_profile_update_publishes_nothing(client, register, bearer, events, auth_app):
    user = await register("evt_noop")
    await events.wait_for(1)
    r = await client.put("/api/auth/profile", headers=bearer(user), json={"theme": "neon"})
    assert r.status_code == 422
    assert await relay_pass(auth_app) == 0
    assert len(await events.all()) == 1


async def test_block_and_unblock_publish_once_each(client, register, bearer, events, auth_app):
    me = await register("evt_blocker")
    target = await register("evt_target")
    await events.wait_for(2)
    path = f"/api/users/{target['user']['id']}/block"
    for _ in range(2):  # the second block and unblock change nothing: no event
        assert (await client.post(path, headers=bearer(me))).status_code == 204
    for _ in range(2):
        assert (await client.delete(path, headers=bearer(me))).status_code == 204
    await events.wait_for(4)
    await relay_pass(auth_app)
    published = await events.all()
    assert [p.subject for p in published[2:]] == ["user.blocked", "user.unblocked"]
    for p in published[2:]:
        assert p.event.type == p.subject
        assert p.event.data.blocker_id == me["user"]["id"]
        assert p.event.data.blocked_id == target["user"]["id"]
        assert p.event.subject == me["user"]["id"]
        assert p.headers[MSG_ID_HEADER] == p.event.id


async def test_refused_block_publishes_nothing(client, register, bearer, events, auth_app):
    me = await register("evt_self")
    await events.wait_for(1)
    assert (await client.post(f"/api/users/{me['user']['id']}/block", headers=bearer(me))).status_code == 422
    assert await relay_pass(auth_app) == 0
    assert len(await events.all()) == 1


async def test_republishing_the_same_event_is_deduplicated(client, register, events, db, auth_app):
    """A relay that crashed after JetStream's ack republishes the row: the stream keeps one copy."""
    await register("evt_dedup")
    await events.wait_for(1)
    async with db() as session:
        await session.execute(text("UPDATE outbox SET published_at = NULL"))
        await session.commit()
    await relay_pass(auth_app)
    assert await outbox_rows(db) == [("user.registered", True)]
    info = await events.js.stream_info(STREAM)
    assert info.state.messages == 1
