"""GET/POST/DELETE /api/channels/{id}/subscription, the owner's list, the payment-provider hook,
the renewal job, and the subscription.* events published through the outbox."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from channels_service.main import build_runtime
from channels_service.subscriptions.payments import (Authorization, NoPayments, PaymentProvider,
                                                     PaymentProviderUnavailable, SubscriptionChange)
from channels_service.subscriptions.renewals import Renewals, run_due

DAY = timedelta(days=1)


class Scripted:
    """A payment provider that records what it is asked and refuses (or cannot answer) on demand."""

    name = "scripted"

    def __init__(self):
        self.asked: list[SubscriptionChange] = []
        self.refuse: set[str] = set()
        self.unavailable: set[str] = set()

    async def authorize(self, change: SubscriptionChange) -> Authorization:
        self.asked.append(change)
        if change.action in self.unavailable:
            raise PaymentProviderUnavailable("down")
        if change.action in self.refuse:
            return Authorization(ok=False, reason="Your card was declined.")
        return Authorization(ok=True)


@pytest.fixture
def payment_provider():
    return Scripted()


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def events_of(published):
    async def _all(channel_id: str):
        return [e for e in await published() if e.type.startswith("subscription.")
                and e.data.channel_id == channel_id]
    return _all


async def test_subscribe_change_cancel_resume_and_their_events(client, make_user, create_channel, published,
                                                                eventually, payment_provider, sql):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/subscription"
    before = datetime.now(UTC)

    r = await client.post(url, headers=bob.headers, json={"tier": "BASIC"})
    assert r.status_code == 201, r.text
    sub = r.json()
    assert (sub["channelId"], sub["userId"], sub["tier"], sub["status"]) == (ch["id"], bob.id, "BASIC", "ACTIVE")
    renewal = when(sub["renewalDate"])
    assert before + 30 * DAY <= renewal <= datetime.now(UTC) + 30 * DAY
    assert sub["renewalDate"].endswith("Z") and r.headers["cache-control"] == "no-store"
    assert (await client.get(url, headers=bob.headers)).json() == sub

    # another tier keeps the date; asking for what is already so changes nothing
    r = await client.post(url, headers=bob.headers, json={"tier": "PREMIUM"})
    assert r.status_code == 200 and r.json()["tier"] == "PREMIUM" and r.json()["renewalDate"] == sub["renewalDate"]
    assert r.json()["id"] == sub["id"]
    r = await client.post(url, headers=bob.headers, json={"tier": "PREMIUM"})
    assert r.status_code == 200 and r.json()["tier"] == "PREMIUM"

    # cancel: still valid until the renewal date; twice is once
    for _ in range(2):
        r = await client.delete(url, headers=bob.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["tier"], r.json()["renewalDate"]) == ("CANCELLED", "PREMIUM",
                                                                                   sub["renewalDate"])
    assert (await client.get(url, headers=bob.headers)).json()["status"] == "CANCELLED"

    # subscribing again before the date resumes it (same date, same id), at any tier
    r = await client.post(url, headers=bob.headers, json={"tier": "VIP"})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["tier"], r.json()["renewalDate"], r.json()["id"]) == (
        "ACTIVE", "VIP", sub["renewalDate"], sub["id"])
    assert await sql("select count(*) from channel_subscriptions") == [(1,)]

    got = await eventually(lambda: _types(events_of(published), ch["id"], 4), message="four subscription events")
    assert [e.type for e in got] == ["subscription.created", "subscription.changed", "subscription.cancelled",
                                     "subscription.changed"]
    created, changed, cancelled, resumed = (e.data for e in got)
    assert (created.id, created.user_id, created.tier, created.status) == (sub["id"], bob.id, "BASIC", "ACTIVE")
    assert created.renewal_date == renewal and all(e.source == "channels" for e in got)
    assert (changed.previous_tier, changed.tier, changed.previous_status, changed.status) == (
        "BASIC", "PREMIUM", "ACTIVE", "ACTIVE")
    assert (cancelled.status, cancelled.renewal_date) == ("CANCELLED", renewal)
    assert (resumed.previous_tier, resumed.tier, resumed.previous_status, resumed.status) == (
        "PREMIUM", "VIP", "CANCELLED", "ACTIVE")
    # the provider was asked before each change, and never for a change that was already so
    assert [(c.action, c.tier, c.previous_tier) for c in payment_provider.asked] == [
        ("create", "BASIC", None), ("change", "PREMIUM", "BASIC"), ("cancel", "PREMIUM", "PREMIUM"),
        ("resume", "VIP", "PREMIUM")]
    assert {(c.user_id, c.channel_id, c.subscription_id) for c in payment_provider.asked} == {
        (uuid.UUID(bob.id), uuid.UUID(ch["id"]), uuid.UUID(sub["id"]))}


async def _types(events, channel_id, n):
    got = await events(channel_id)
    return got if len(got) >= n else None


async def test_errors(client, make_user, create_channel, problem, sql):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/subscription"

    for method in ("GET", "DELETE"):
        problem(await client.request(method, url), 401)
    problem(await client.post(url, json={"tier": "BASIC"}), 401)
    problem(await client.get(f"/api/channels/{ch['id']}/subscriptions"), 401)
    for bad in (f"/api/channels/{uuid.uuid4()}/subscription", "/api/channels/nope/subscription"):
        problem(await client.get(bad, headers=bob.headers), 404)
        problem(await client.post(bad, headers=bob.headers, json={"tier": "BASIC"}), 404)
        problem(await client.delete(bad, headers=bob.headers), 404)
        problem(await client.get(bad + "s", headers=bob.headers), 404)
    # never subscribed: nothing to read or cancel
    assert "not subscribed" in problem(await client.get(url, headers=bob.headers), 404)["detail"]
    problem(await client.delete(url, headers=bob.headers), 404)
    for bad in ({}, {"tier": None}, {"tier": "GOLD"}, {"tier": "basic"}, {"tier": 1}, {"tier": ["VIP"]}):
        body = problem(await client.post(url, headers=bob.headers, json=bad), 422)
        assert body["errors"][0]["field"] == "tier", bad
    problem(await client.post(url, headers=bob.headers, content=b"{"), 422)
    # the owner cannot subscribe to their own channel
    body = problem(await client.post(url, headers=alice.headers, json={"tier": "VIP"}), 422)
    assert "own channel" in body["detail"]
    assert await sql("select count(*) from channel_subscriptions") == [(0,)]


async def test_a_refusing_provider_stores_nothing_and_answers_402(client, make_user, create_channel, problem,
                                                                  payment_provider, published, sql):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/subscription"

    payment_provider.refuse = {"create"}
    body = problem(await client.post(url, headers=bob.headers, json={"tier": "VIP"}), 402)
    assert body["detail"] == "Your card was declined." and body["title"] == "Payment Required"
    assert body["type"] == "urn:streamplatform:subscriptions:payment_refused"
    problem(await client.get(url, headers=bob.headers), 404)
    assert await sql("select count(*) from channel_subscriptions") == [(0,)]

    payment_provider.refuse = {"change", "cancel"}
    sub = (await client.post(url, headers=bob.headers, json={"tier": "BASIC"})).json()
    problem(await client.post(url, headers=bob.headers, json={"tier": "VIP"}), 402)
    problem(await client.delete(url, headers=bob.headers), 402)
    assert (await client.get(url, headers=bob.headers)).json() == sub

    payment_provider.refuse = set()
    payment_provider.unavailable = {"change"}
    r = await client.post(url, headers=bob.headers, json={"tier": "VIP"})
    problem(r, 503)
    assert r.headers["retry-after"] == "30"
    assert (await client.get(url, headers=bob.headers)).json() == sub

    # only the one that went through was announced
    assert [e.type for e in await published() if e.type.startswith("subscription.")] == ["subscription.created"]


async def test_the_default_provider_allows_every_change(channels_settings):
    runtime = build_runtime(channels_settings)
    assert isinstance(runtime.payment_provider, NoPayments)
    assert isinstance(runtime.payment_provider, PaymentProvider)
    change = SubscriptionChange(action="create", subscription_id=uuid.uuid4(), user_id=uuid.uuid4(),
                                channel_id=uuid.uuid4(), tier="VIP", previous_tier=None,
                                renewal_date=datetime.now(UTC))
    assert (await NoPayments().authorize(change)).ok


async def test_the_owner_lists_current_subscribers_with_their_number(client, make_user, create_channel,
                                                                     problem, sql):
    alice = make_user()
    subscribers = [make_user(f"sub_{i}") for i in range(4)]
    ch = await create_channel(alice)
    other = await create_channel(make_user())
    for i, user in enumerate(subscribers):
        tier = ("BASIC", "PREMIUM", "VIP", "BASIC")[i]
        assert (await client.post(f"/api/channels/{ch['id']}/subscription", headers=user.headers,
                                  json={"tier": tier})).status_code == 201
    await client.post(f"/api/channels/{other['id']}/subscription", headers=subscribers[0].headers,
                      json={"tier": "VIP"})
    await sql("update channel_subscriptions set created_at = created_at - make_interval(secs => :n) "
              "where user_id = :u", n=100, u=uuid.UUID(subscribers[0].id))
    # sub_1 cancelled (still current), sub_2 cancelled and past its date (over)
    await client.delete(f"/api/channels/{ch['id']}/subscription", headers=subscribers[1].headers)
    await client.delete(f"/api/channels/{ch['id']}/subscription", headers=subscribers[2].headers)
    await sql("update channel_subscriptions set renewal_date = now() - interval '1 second' where user_id = :u",
              u=uuid.UUID(subscribers[2].id))
    url = f"/api/channels/{ch['id']}/subscriptions"

    r = await client.get(url + "?limit=2", headers=alice.headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["count"] == 3 and len(page["items"]) == 2 and page["nextCursor"]
    rest = (await client.get(url, params={"limit": 2, "cursor": page["nextCursor"]}, headers=alice.headers)).json()
    assert rest["nextCursor"] is None and rest["count"] == 3
    items = page["items"] + rest["items"]
    assert [i["user"]["id"] for i in items] == [subscribers[3].id, subscribers[1].id, subscribers[0].id]
    assert [(i["tier"], i["status"]) for i in items] == [("BASIC", "ACTIVE"), ("PREMIUM", "CANCELLED"),
                                                         ("BASIC", "ACTIVE")]
    # the past-date cancellation reads as EXPIRED to its subscriber as well
    r = await client.get(f"/api/channels/{ch['id']}/subscription", headers=subscribers[2].headers)
    assert r.json()["status"] == "EXPIRED"

    problem(await client.get(url, headers=subscribers[0].headers), 403)
    problem(await client.get(url + "?cursor=eyJ4IjoxfQ", headers=alice.headers), 400)
    problem(await client.get(url + "?limit=0", headers=alice.headers), 422)


async def test_renewal_job_expires_cancelled_and_renews_active(client, make_user, create_channel, channels_app,
                                                               channels_settings, payment_provider, published,
                                                               eventually, sql):
    alice, ann, ben, cid = make_user(), make_user(), make_user(), make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/subscription"
    for user in (ann, ben, cid):
        assert (await client.post(url, headers=user.headers, json={"tier": "PREMIUM"})).status_code == 201
    await client.delete(url, headers=ann.headers)
    past = datetime.now(UTC) - 61 * DAY  # down for two periods: renewed once, to a future date
    await sql("update channel_subscriptions set renewal_date = :at", at=past)
    runtime = channels_app.state.runtime

    class RefuseCid(Scripted):
        async def authorize(self, change):
            if change.user_id == uuid.UUID(cid.id):
                return Authorization(ok=False, reason="no funds")
            return await super().authorize(change)

    done = await run_due(runtime.db, RefuseCid(), channels_settings.subscription_period)
    assert done == {"expired": 2, "renewed": 1, "deferred": 0}
    assert await run_due(runtime.db, RefuseCid(), channels_settings.subscription_period) == {
        "expired": 0, "renewed": 0, "deferred": 0}

    ann_sub = (await client.get(url, headers=ann.headers)).json()
    ben_sub = (await client.get(url, headers=ben.headers)).json()
    cid_sub = (await client.get(url, headers=cid.headers)).json()
    assert ann_sub["status"] == cid_sub["status"] == "EXPIRED"
    assert ben_sub["status"] == "ACTIVE" and when(ben_sub["renewalDate"]) == past + 90 * DAY

    got = await eventually(lambda: _types(events_of(published), ch["id"], 7), message="renewal events")
    tail = {(e.type, e.data.user_id) for e in got[4:]}
    assert tail == {("subscription.expired", ann.id), ("subscription.expired", cid.id),
                    ("subscription.changed", ben.id)}

    # an unreachable provider leaves a due subscription for the next run
    await sql("update channel_subscriptions set renewal_date = :at where user_id = :u", at=past,
              u=uuid.UUID(ben.id))
    down = Scripted()
    down.unavailable = {"renew"}
    assert await run_due(runtime.db, down, channels_settings.subscription_period) == {
        "expired": 0, "renewed": 0, "deferred": 1}
    assert (await client.get(url, headers=ben.headers)).json()["status"] == "ACTIVE"

    # after it expired, subscribing again starts a new period (same id, created again)
    before = datetime.now(UTC)
    r = await client.post(url, headers=ann.headers, json={"tier": "BASIC"})
    assert r.status_code == 201 and r.json()["id"] == ann_sub["id"] and r.json()["status"] == "ACTIVE"
    assert when(r.json()["renewalDate"]) >= before + 30 * DAY
    assert (await client.delete(url, headers=cid.headers)).status_code == 404  # nothing left to cancel


async def test_the_renewal_worker_runs_a_pass_every_interval_until_stopped(client, make_user, create_channel,
                                                                          channels_app, channels_settings,
                                                                          sql, eventually):
    """The service's own loop (not run_due called by hand): a subscription that falls due while it
    runs is expired by a later pass, and stop ends it."""
    alice, ann = make_user(), make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/subscription"
    assert (await client.post(url, headers=ann.headers, json={"tier": "BASIC"})).status_code == 201
    assert (await client.delete(url, headers=ann.headers)).status_code == 200
    worker = Renewals(0.1, channels_settings.subscription_period)
    runtime = SimpleNamespace(db=channels_app.state.runtime.db, payment_provider=NoPayments())
    running = asyncio.create_task(worker(runtime))
    await asyncio.sleep(0.25)  # a pass or more with nothing due
    assert await sql("select status from channel_subscriptions where user_id = :u",
                     u=uuid.UUID(ann.id)) == [("CANCELLED",)]
    await sql("update channel_subscriptions set renewal_date = :at where user_id = :u",
              at=datetime.now(UTC) - DAY, u=uuid.UUID(ann.id))

    async def expired() -> bool:  # the stored row: the API reads a cancelled one past its date as EXPIRED anyway
        return await sql("select status from channel_subscriptions where user_id = :u",
                         u=uuid.UUID(ann.id)) == [("EXPIRED",)]

    await eventually(expired, timeout=5, message="expired by a later pass")
    worker.stop()
    await asyncio.wait_for(running, 1)
