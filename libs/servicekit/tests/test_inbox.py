"""Idempotent consumers against real JetStream and PostgreSQL (EVENTS.md, "Delivery rules")."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from contracts.subjects import EVENTS_STREAM
from servicekit.inbox import InboxConsumer
from sqlalchemy import text

CONSUMER = "test-consumer"
STREAM = EVENTS_STREAM.name


@pytest.fixture
async def effects(db, sql):
    """A scratch table standing for a consumer's own state; returns a row counter."""
    await sql("CREATE TABLE effects (event_id text NOT NULL, username text NOT NULL)")

    async def _effects(event_id: str | None = None) -> int:
        if event_id is None:
            return (await sql("SELECT count(*) FROM effects"))[0][0]
        return (await sql("SELECT count(*) FROM effects WHERE event_id = :e", e=event_id))[0][0]

    return _effects


async def record_effect(session, event) -> None:
    conn = await session.connection()
    await conn.execute(text("INSERT INTO effects (event_id, username) VALUES (:e, :u)"),
                       {"e": event.id, "u": event.data.username})


@pytest.fixture
def make_consumer(db, js):
    def _make(handler, **options) -> InboxConsumer:
        options.setdefault("backoff_seconds", (0.1,))
        options.setdefault("name", CONSUMER)
        consumer = InboxConsumer(db, js, stream=STREAM, subjects=["user.>"], handler=handler, **options)
        outcomes: list[str] = []
        process = consumer.process

        async def recording_process(msg):
            outcome = await process(msg)
            outcomes.append(outcome)
            return outcome

        consumer.process = recording_process
        consumer.outcomes = outcomes
        return consumer

    return _make


@pytest.fixture
def running():
    """`async with running(consumer):` runs consumer.run() in the background and stops it after."""

    @contextlib.asynccontextmanager
    async def _running(consumer: InboxConsumer):
        task = asyncio.create_task(consumer.run())
        try:
            yield task
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 5)
        assert task.exception() is None

    return _running


@pytest.fixture
def counts(sql):
    async def _counts() -> tuple[int, int]:
        inbox = (await sql("SELECT count(*) FROM inbox"))[0][0]
        dead = (await sql("SELECT count(*) FROM dead_letters"))[0][0]
        return inbox, dead

    return _counts


@pytest.fixture
async def terminated(nc):
    """Advisories JetStream sends when our consumer terminates (+TERM) a message."""
    seen = []

    async def on_advisory(msg):
        seen.append(msg)

    sub = await nc.subscribe(f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{STREAM}.{CONSUMER}", cb=on_advisory)
    yield seen
    await sub.unsubscribe()


async def fetch(js, n: int, timeout: float = 3.0):
    sub = await js.pull_subscribe_bind(durable=CONSUMER, stream=STREAM)
    msgs = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(msgs) < n and loop.time() < deadline:
        try:
            msgs += await sub.fetch(n - len(msgs), timeout=max(0.1, deadline - loop.time()))
        except TimeoutError:
            pass
    await sub.unsubscribe()
    assert len(msgs) == n, f"fetched {len(msgs)} of {n}"
    return msgs


async def settled(js) -> bool:
    info = await js.consumer_info(STREAM, CONSUMER)
    return info.num_pending == 0 and info.num_ack_pending == 0


# ---- exactly-once effects --------------------------------------------------------------------

async def test_same_event_published_twice_is_handled_once(js, make_consumer, running, effects, counts,
                                                          new_event, eventually):
    event = new_event()
    # two publishes that JetStream cannot deduplicate (different Nats-Msg-Id), same event id
    await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": f"a-{event.id}"})
    await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": f"b-{event.id}"})
    assert (await js.stream_info(STREAM)).state.messages == 2

    consumer = make_consumer(record_effect)
    async with running(consumer):
        await eventually(lambda: len(consumer.outcomes) == 2, timeout=5, message="both deliveries handled")
        await eventually(lambda: settled(js), timeout=3, message="consumer settled")

    assert consumer.outcomes == ["processed", "duplicate"]
    assert await effects(event.id) == 1
    assert await counts() == (1, 0)


async def test_redelivery_after_a_lost_ack_does_not_repeat_the_effect(js, make_consumer, effects, counts,
                                                                       new_event):
    event = new_event()
    await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
    consumer = make_consumer(record_effect, ack_wait_seconds=1)
    await consumer.subscribe()

    (first,) = await fetch(js, 1)

    async def lost_ack():  # the commit happened, the ack never reached the server
        return None

    first.ack = lost_ack
    assert await consumer.process(first) == "processed"
    assert await effects(event.id) == 1

    (again,) = await fetch(js, 1, timeout=5)  # redelivered once ack_wait expires
    assert again.metadata.num_delivered == 2
    assert await consumer.process(again) == "duplicate"
    assert await effects(event.id) == 1
    assert await counts() == (1, 0)
    assert await settled(js)


async def test_ack_is_sent_only_after_the_effect_and_inbox_row_commit(js, make_consumer, effects, sql,
                                                                      new_event):
    event = new_event()
    await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
    consumer = make_consumer(record_effect)
    await consumer.subscribe()
    (msg,) = await fetch(js, 1)

    seen_at_ack = []
    real_ack = msg.ack

    async def checking_ack():
        # another connection: sees only committed data
        seen_at_ack.append((
            await effects(event.id),
            (await sql("SELECT count(*) FROM inbox WHERE consumer = :c AND event_id = :e",
                       c=CONSUMER, e=event.id))[0][0],
        ))
        await real_ack()

    msg.ack = checking_ack
    assert await consumer.process(msg) == "processed"
    assert seen_at_ack == [(1, 1)]


# ---- failures --------------------------------------------------------------------------------

async def test_failing_handler_is_retried_with_backoff_and_its_partial_work_rolled_back(
        js, make_consumer, running, effects, counts, new_event, eventually):
    event = new_event()
    await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
    loop = asyncio.get_running_loop()
    calls: list[float] = []

    async def flaky(session, ev):
        calls.append(loop.time())
        await record_effect(session, ev)  # must vanish with the failed attempt
        if len(calls) == 1:
            raise RuntimeError("database of a neighbour is down")

    consumer = make_consumer(flaky, backoff_seconds=(0.3,))
    async with running(consumer):
        await eventually(lambda: consumer.outcomes == ["retry", "processed"], timeout=5,
                         message="retry then success")
        await eventually(lambda: settled(js), timeout=3, message="consumer settled")

    assert calls[1] - calls[0] >= 0.25, "the nak must carry the backoff delay"
    assert await effects(event.id) == 1
    assert await counts() == (1, 0)


async def test_handler_that_keeps_failing_is_dead_lettered_and_terminated(
        js, make_consumer, running, effects, counts, sql, new_event, eventually, terminated):
    event = new_event()
    await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
    calls = []

    async def broken(session, ev):
        calls.append(ev.id)
        await record_effect(session, ev)
        raise ValueError("handler exploded")

    consumer = make_consumer(broken, max_deliver=3, ack_wait_seconds=1)
    async with running(consumer):
        await eventually(lambda: consumer.outcomes == ["retry", "retry", "dead_letter"], timeout=8,
                         message="two retries then a dead letter")
        # longer than ack_wait: a message that was not terminated would come back now
        await asyncio.sleep(1.5)

    assert len(calls) == 3
    assert consumer.outcomes == ["retry", "retry", "dead_letter"]
    (row,) = await sql("SELECT consumer, subject, event_id, deliveries, error, payload, headers "
                       "FROM dead_letters")
    assert row.consumer == CONSUMER
    assert row.subject == "user.registered"
    assert row.event_id == event.id
    assert row.deliveries == 3
    assert "handler exploded" in row.error
    assert bytes(row.payload) == event.to_json_bytes()
    assert row.headers["Nats-Msg-Id"] == event.id
    assert await effects() == 0
    assert await counts() == (0, 1)
    assert await settled(js)
    assert len(terminated) == 1


@pytest.mark.parametrize("payload", [
    b"this is not json",
    b'{"type": "user.registered", "id": "not-a-uuid"}',
    b'{"type": "no.such.event", "id": "0b6f1f52-5a8a-4bb4-a3c5-1f0d2b1c6c11"}',
])
async def test_unparseable_payload_goes_straight_to_dead_letters(js, make_consumer, running, effects, sql,
                                                                 eventually, terminated, payload):
    await js.publish("user.registered", payload, headers={"Nats-Msg-Id": "poison-1"})
    calls = []

    async def handler(session, ev):
        calls.append(ev)

    consumer = make_consumer(handler, max_deliver=5)
    async with running(consumer):
        await eventually(lambda: consumer.outcomes == ["dead_letter"], timeout=5, message="dead-lettered")
        await eventually(lambda: settled(js), timeout=3, message="consumer settled")

    assert calls == []
    (row,) = await sql("SELECT event_id, deliveries, error, payload FROM dead_letters")
    assert row.event_id is None
    assert row.deliveries == 1
    assert row.error.startswith("unparseable event")
    assert bytes(row.payload) == payload
    await eventually(lambda: len(terminated) == 1, timeout=2, message="terminated advisory")


async def test_a_restarted_consumer_resumes_after_what_it_acknowledged(js, make_consumer, running, effects,
                                                                       new_event, eventually):
    first, second = new_event(), new_event()
    await js.publish("user.registered", first.to_json_bytes(), headers={"Nats-Msg-Id": first.id})
    consumer = make_consumer(record_effect)
    async with running(consumer):
        await eventually(lambda: consumer.outcomes == ["processed"], timeout=5, message="first handled")

    await js.publish("user.registered", second.to_json_bytes(), headers={"Nats-Msg-Id": second.id})
    restarted = make_consumer(record_effect)
    async with running(restarted):
        await eventually(lambda: restarted.outcomes == ["processed"], timeout=5, message="second handled")
        await eventually(lambda: settled(js), timeout=3, message="consumer settled")
    assert restarted.outcomes == ["processed"]
    assert await effects(first.id) == 1
    assert await effects(second.id) == 1


async def test_consumer_lag_is_exported_per_consumer(js, make_consumer, running, new_event, eventually, effects):
    from servicekit.inbox import PENDING

    for _ in range(7):
        event = new_event()
        await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
    consumer = make_consumer(record_effect, batch=3)
    seen: list[float] = []
    process = consumer.process

    async def watching(msg):
        seen.append(PENDING.labels(CONSUMER)._value.get())  # the lag as the first batch saw it
        return await process(msg)

    consumer.process = watching
    async with running(consumer):
        await eventually(lambda: len(consumer.outcomes) == 7, timeout=5, message="all handled")
        await eventually(lambda: PENDING.labels(CONSUMER)._value.get() == 0, timeout=3,
                         message="lag back to 0 once the stream is drained")
    assert seen[0] == 4  # a batch of 3 fetched, 4 still waiting in the stream
    assert await effects() == 7  # handled, not dead-lettered (it once passed on 7 dead letters)


async def test_a_failed_dead_letter_write_naks_and_the_event_comes_back_until_it_is_recorded(
        js, make_consumer, running, sql, new_event, eventually):
    event = new_event()
    await js.publish("user.registered", event.to_json_bytes(), headers={"Nats-Msg-Id": event.id})
    # the database answers, but the dead-letter write itself fails
    await sql("ALTER TABLE dead_letters RENAME TO dead_letters_away")

    async def broken(session, ev):
        raise ValueError("handler exploded")

    consumer = make_consumer(broken, max_deliver=2, ack_wait_seconds=1)
    async with running(consumer):
        await eventually(lambda: consumer.outcomes.count("retry") >= 3, timeout=10,
                         message="the event keeps coming back while its dead letter cannot be written")
        await sql("ALTER TABLE dead_letters_away RENAME TO dead_letters")
        await eventually(lambda: "dead_letter" in consumer.outcomes, timeout=10, message="dead-lettered")
        await eventually(lambda: settled(js), timeout=3, message="consumer settled")

    (row,) = await sql("SELECT event_id FROM dead_letters")
    assert row.event_id == event.id
