"""Transactional outbox against real PostgreSQL and JetStream (EVENTS.md, "Delivery rules")."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import nats
import pytest
from contracts.subjects import EVENTS_STREAM
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from servicekit.messaging import ensure_streams
from servicekit.outbox import OutboxRelay, add_event, stage_event
from sqlalchemy import text

CRASH_WORKER = Path(__file__).with_name("outbox_crash_worker.py")


@pytest.fixture
def outbox_row(sql):
    async def _row(event_id: str):
        rows = await sql("SELECT published_at, attempts, created_at FROM outbox WHERE id = :id",
                         id=uuid.UUID(event_id))
        return rows[0] if rows else None

    return _row


@pytest.fixture
def stage(db):
    """Stage `event` with the given API (stage_event builds the envelope, add_event takes one)."""

    async def _stage(session, event, api: str = "stage_event"):
        if api == "add_event":
            await add_event(session, event, "user.registered")
            return event
        return await stage_event(session, "user.registered", event.data, source="auth", key=event.subject)

    return _stage


async def _run_worker(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CRASH_WORKER), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


# ---- rollback / commit -----------------------------------------------------------------------

@pytest.mark.parametrize("api", ["stage_event", "add_event"])
@pytest.mark.parametrize("how", ["rollback", "exception"])
async def test_rolled_back_transaction_leaves_nothing_to_publish(db, js, sql, stage, new_event,
                                                               stream_messages, api, how):
    if how == "rollback":
        async with db.session() as session:
            await stage(session, new_event(), api)
            await session.flush()  # the row really reached the database inside the transaction
            conn = await session.connection()
            assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar() == 1
            await session.rollback()
    else:
        with pytest.raises(RuntimeError, match="business rule"):
            async with db.session() as session, session.begin():
                await stage(session, new_event(), api)
                await session.flush()
                raise RuntimeError("business rule violated after staging")

    assert await sql("SELECT id FROM outbox") == []
    assert await OutboxRelay(db, js).publish_pending() == 0
    assert await stream_messages() == []


@pytest.mark.parametrize("api", ["stage_event", "add_event"])
async def test_committed_event_is_published_once_with_its_id_as_msg_id(db, js, stage, new_event, outbox_row,
                                                                       stream_messages, api):
    async with db.session() as session:
        event = await stage(session, new_event(), api)
        await session.commit()
    row = await outbox_row(event.id)
    assert row is not None and row.published_at is None

    relay = OutboxRelay(db, js)
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0  # marked: a second pass has nothing to do

    row = await outbox_row(event.id)
    assert row.published_at is not None
    messages = await stream_messages()
    assert len(messages) == 1
    msg = messages[0]
    assert msg.subject == "user.registered"
    assert msg.headers["Nats-Msg-Id"] == event.id
    assert msg.headers["Ce-Type"] == "user.registered"
    assert msg.data == event.to_json_bytes()


async def test_relay_run_is_woken_by_notify_within_a_second(db, js, sql, new_event, outbox_row, eventually):
    # polling every 30 s: only the NOTIFY sent on commit can make this fast
    relay = OutboxRelay(db, js, poll_seconds=30)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _listening(sql), timeout=5, message="relay LISTENing")
        await asyncio.sleep(0.3)  # let the relay's first (empty) pass finish and go to sleep

        async with db.session() as session:
            event = await stage_event(session, "user.registered", new_event().data, source="auth")
            await session.commit()
        loop = asyncio.get_running_loop()
        committed_at = loop.time()

        async def published():
            row = await outbox_row(event.id)
            return row.published_at is not None

        await eventually(published, timeout=1.5, interval=0.02, message="row published after NOTIFY")
        assert loop.time() - committed_at < 1.5
    finally:
        relay.stop()
        await asyncio.wait_for(task, 5)
    assert task.exception() is None


async def _listening(sql) -> bool:
    rows = await sql("SELECT count(*) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND query ILIKE 'LISTEN %'")
    return rows[0][0] > 0


async def test_run_drains_more_than_one_batch(db, js, new_event, sql, stream_messages, eventually):
    async with db.session() as session:
        for _ in range(5):
            await stage_event(session, "user.registered", new_event().data, source="auth")
        await session.commit()
    relay = OutboxRelay(db, js, batch_size=2, poll_seconds=30)
    task = asyncio.create_task(relay.run())
    try:
        async def all_published():
            return (await sql("SELECT count(*) FROM outbox WHERE published_at IS NULL"))[0][0] == 0

        await eventually(all_published, timeout=3, message="every row published")
    finally:
        relay.stop()
        await asyncio.wait_for(task, 5)
    assert len(await stream_messages()) == 5


async def test_events_staged_in_one_transaction_are_relayed_in_staging_order(db, js, new_event,
                                                                             stream_messages):
    # one transaction's rows share now(); the relay must still keep the order the code staged them
    async with db.session() as session:
        staged = [await stage_event(session, "user.registered", new_event().data, source="auth")
                  for _ in range(30)]
        await session.commit()
    relay = OutboxRelay(db, js, batch_size=7)
    while await relay.publish_pending():
        pass
    published = await stream_messages()
    assert [m.headers["Nats-Msg-Id"] for m in published] == [e.id for e in staged]


# ---- NATS trouble ----------------------------------------------------------------------------

async def test_publish_error_keeps_the_row_and_a_later_pass_publishes_it(db, js, new_event, outbox_row,
                                                                          stream_messages):
    async with db.session() as session:
        event = await stage_event(session, "user.registered", new_event().data, source="auth")
        await session.commit()

    # JetStream errors: no stream captures the subject, so the publish is refused
    await js.delete_stream(EVENTS_STREAM.name)
    relay = OutboxRelay(db, js)
    assert await relay.publish_pending() == 0
    row = await outbox_row(event.id)
    assert row.published_at is None
    assert row.attempts == 1

    await ensure_streams(js, [EVENTS_STREAM])
    assert await relay.publish_pending() == 1
    assert (await outbox_row(event.id)).published_at is not None
    messages = await stream_messages()
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [event.id]


async def test_unreachable_nats_keeps_the_row_and_a_later_pass_publishes_it(db, js, nats_url, new_event,
                                                                             outbox_row, stream_messages):
    async with db.session() as session:
        first = await stage_event(session, "user.registered", new_event().data, source="auth")
        second = await stage_event(session, "user.registered", new_event().data, source="auth")
        await session.commit()

    dead = await nats.connect(nats_url)
    await dead.close()  # every publish on it fails, like a NATS that went away
    assert await OutboxRelay(db, dead.jetstream()).publish_pending() == 0
    assert await OutboxRelay(db, dead.jetstream()).publish_pending() == 0
    for event in (first, second):
        assert (await outbox_row(event.id)).published_at is None
    # the pass stops at the first failure, so order is kept; an outage is not the row's fault and
    # spends none of its attempts (a row is parked only for failing while JetStream answers)
    assert [(await outbox_row(e.id)).attempts for e in (first, second)] == [0, 0]

    assert await OutboxRelay(db, js).publish_pending() == 2
    for event in (first, second):
        assert (await outbox_row(event.id)).published_at is not None
    assert sorted(m.headers["Nats-Msg-Id"] for m in await stream_messages()) == sorted([first.id, second.id])


# ---- poison rows and honest counts ----------------------------------------------------------

async def test_a_poison_row_is_parked_after_max_attempts_and_the_rows_behind_it_are_published(
        db, js, new_event, outbox_row, stream_messages):
    from servicekit.outbox import OUTBOX_PARKED

    poison, good = new_event(), new_event()
    async with db.session() as session:
        await add_event(session, poison, "nowhere.no_stream_captures_this")  # refused every time
        await add_event(session, good, "user.registered")
        await session.commit()

    relay = OutboxRelay(db, js)
    relay.max_attempts = 3
    relay.count_interval_seconds = 0
    published = [await relay.publish_pending() for _ in range(4)]

    assert published == [0, 0, 1, 0], "two failed passes, parked on the third, the row behind it sent"
    assert [m.headers["Nats-Msg-Id"] for m in await stream_messages()] == [good.id]
    row = await outbox_row(poison.id)
    assert row.published_at is None and row.attempts == 3  # kept for an operator, tried no more
    assert OUTBOX_PARKED._value.get() == 1


async def test_outbox_pending_counts_every_unpublished_row_not_just_one_batch(db, js, new_event):
    from servicekit.outbox import OUTBOX_PENDING

    async with db.session() as session:
        for _ in range(250):
            await add_event(session, new_event(), "user.registered")
        await session.commit()
    relay = OutboxRelay(db, js, batch_size=100)
    relay.count_interval_seconds = 0
    assert await relay.publish_pending() == 100
    assert OUTBOX_PENDING._value.get() == 150


# ---- ordering --------------------------------------------------------------------------------

async def test_rows_committed_out_of_order_are_all_published(db, js, new_event, outbox_row, stream_messages):
    relay = OutboxRelay(db, js)
    async with db.session() as early, db.session() as late:
        # `early` starts first (older created_at) but commits last
        early_event = await stage_event(early, "user.registered", new_event().data, source="auth")
        await early.flush()
        await asyncio.sleep(0.05)
        late_event = await stage_event(late, "user.registered", new_event().data, source="auth")
        await late.commit()

        assert await relay.publish_pending() == 1  # only the committed one is visible
        assert (await outbox_row(late_event.id)).published_at is not None

        await early.commit()

    early_row, late_row = await outbox_row(early_event.id), await outbox_row(late_event.id)
    assert early_row.created_at < late_row.created_at  # the late commit really carries an older stamp
    assert await relay.publish_pending() == 1
    assert (await outbox_row(early_event.id)).published_at is not None
    assert [m.headers["Nats-Msg-Id"] for m in await stream_messages()] == [late_event.id, early_event.id]


# ---- tracing ---------------------------------------------------------------------------------

async def test_trace_context_is_staged_with_the_event_and_published(db, js, new_event, stream_messages):
    tracer = TracerProvider().get_tracer("outbox-test")
    with tracer.start_as_current_span("register user") as span:
        async with db.session() as session:
            await stage_event(session, "user.registered", new_event().data, source="auth")
            await session.commit()
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert trace.get_current_span().get_span_context().is_valid is False

    assert await OutboxRelay(db, js).publish_pending() == 1
    (msg,) = await stream_messages()
    assert msg.headers["traceparent"].split("-")[1] == trace_id


# ---- crashes ---------------------------------------------------------------------------------

async def test_crash_after_jetstream_ack_before_marking_publishes_exactly_once(
        db, js, kit_db_url, nats_url, new_event, outbox_row, stream_messages, eventually):
    async with db.session() as session:
        event = await stage_event(session, "user.registered", new_event().data, source="auth")
        await session.commit()

    code, out, err = await _run_worker("relay-dies-after-ack", kit_db_url, nats_url)
    assert code == 137, f"worker exited {code}\nstdout: {out}\nstderr: {err}"

    # JetStream has it, the outbox does not know: the row is still pending
    assert (await outbox_row(event.id)).published_at is None
    assert [m.headers["Nats-Msg-Id"] for m in await stream_messages()] == [event.id]

    # restart: a normal pass republishes (the dead process's row lock may linger for a moment)
    relay = OutboxRelay(db, js)
    await eventually(relay.publish_pending, timeout=5, message="row republished after the crash")
    assert (await outbox_row(event.id)).published_at is not None
    assert await relay.publish_pending() == 0

    messages = await stream_messages()
    assert len(messages) == 1, "the duplicate window must drop the republish"
    assert messages[0].headers["Nats-Msg-Id"] == event.id
    assert (await js.stream_info(EVENTS_STREAM.name)).state.messages == 1


async def test_crash_after_commit_before_any_publish_is_published_after_restart(
        db, js, kit_db_url, outbox_row, stream_messages, eventually):
    code, out, err = await _run_worker("commit-then-die", kit_db_url)
    assert code == 137, f"worker exited {code}\nstdout: {out}\nstderr: {err}"
    event_id = out.strip()
    assert (await outbox_row(event_id)).published_at is None
    assert await stream_messages() == []

    # the restarted service's relay: its first pass finds the row left behind
    relay = OutboxRelay(db, js, poll_seconds=30)
    task = asyncio.create_task(relay.run())
    try:
        async def published():
            return (await outbox_row(event_id)).published_at is not None

        await eventually(published, timeout=3, message="left-behind row published")
    finally:
        relay.stop()
        await asyncio.wait_for(task, 5)
    messages = await stream_messages()
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [event_id]
