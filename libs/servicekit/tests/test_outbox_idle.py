"""An idle outbox relay asks PostgreSQL nothing while its LISTEN connection is up, and loses no
promptness when that connection goes away (servicekit/outbox.py, servicekit/notify.py), against
real PostgreSQL and JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from servicekit.db import libpq_dsn
from servicekit.notify import NotifyListener
from servicekit.outbox import NOTIFY_CHANNEL, OutboxMessage, OutboxRelay, stage_event
from sqlalchemy.engine import make_url


class CountingRelay(OutboxRelay):
    """The real relay; counts its passes (each one a SELECT ... FOR UPDATE and a commit)."""

    passes = 0

    async def publish_pending(self) -> int:
        self.passes += 1
        return await super().publish_pending()


async def _published(sql, event_id: str) -> bool:
    rows = await sql("SELECT published_at FROM outbox WHERE id = :id", id=uuid.UUID(event_id))
    return bool(rows) and rows[0][0] is not None


async def _stage_without_notify(db, new_event) -> str:
    """A committed row no NOTIFY announces (what only a poll finds)."""
    event = new_event()
    async with db.session() as session:
        session.add(OutboxMessage(id=uuid.UUID(event.id), subject="user.registered", event_type=event.type,
                                  payload=event.to_json_bytes(), headers={}))
        await session.commit()
    return event.id


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay):
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        relay.stop()
        await asyncio.wait_for(task, 5)
    assert task.exception() is None


async def test_a_listening_relay_makes_no_pass_while_idle_and_a_commit_still_publishes_within_a_second(
        db, js, sql, new_event, eventually):
    relay = CountingRelay(db, js, poll_seconds=0.1)  # the short poll would be 20 passes in 2 s
    async with running(relay):
        await eventually(lambda: relay.listener.listening, timeout=5, message="relay LISTENing")
        # the start's passes are over: the first, the listener's wake, and the count the second one
        # left due (one per count interval)
        await asyncio.sleep(relay.count_interval_seconds + 0.5)
        relay.passes = 0
        await asyncio.sleep(2.0)
        assert relay.passes == 0, "an idle relay with LISTEN up polled PostgreSQL"

        async with db.session() as session:
            event = await stage_event(session, "user.registered", new_event().data, source="auth")
            await session.commit()
        await eventually(lambda: _published(sql, event.id), timeout=1.0, interval=0.02,
                         message="row published after NOTIFY")
        assert 1 <= relay.passes <= 3


async def test_a_relay_whose_listener_cannot_connect_keeps_the_short_poll(db, js, sql, new_event, eventually):
    relay = CountingRelay(db, js, poll_seconds=0.2)
    # nothing listens on port 1: every LISTEN attempt fails
    relay.listener.dsn = libpq_dsn(make_url(db.url).set(port=1).render_as_string(hide_password=False))
    async with running(relay):
        await asyncio.sleep(0.5)
        assert not relay.listener.listening
        event_id = await _stage_without_notify(db, new_event)
        await eventually(lambda: _published(sql, event_id), timeout=1.0, interval=0.02,
                         message="row published by the short poll")


async def test_a_lost_listener_sends_the_relay_back_to_the_short_poll_at_once(db, js, sql, new_event, eventually):
    relay = CountingRelay(db, js, poll_seconds=0.2)
    relay.count_interval_seconds = 0  # no pass for a count left due: only the polls and wakes here
    relay.listener.retry_seconds = 60  # it stays down for the rest of the test
    async with running(relay):
        await eventually(lambda: relay.listener.listening, timeout=5, message="relay LISTENing")
        await asyncio.sleep(0.3)  # the relay now sleeps its long (30 s) safety wait
        killed = await sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND query ILIKE 'LISTEN %'")
        assert killed == [(True,)]
        await eventually(lambda: not relay.listener.listening, timeout=2, message="the listener saw its loss")
        await asyncio.sleep(0.1)  # the pass the loss woke is over: only a poll finds the next row
        event_id = await _stage_without_notify(db, new_event)
        await eventually(lambda: _published(sql, event_id), timeout=1.0, interval=0.02,
                         message="row published by the short poll after the listener's loss")


async def test_a_relay_catches_up_on_what_committed_while_nobody_listened(db, js, sql, new_event, eventually):
    relay = CountingRelay(db, js, poll_seconds=30)  # neither poll can do it: only the listener's wake
    relay.count_interval_seconds = 0
    relay.listener.retry_seconds = 0.5
    async with running(relay):
        await eventually(lambda: relay.listener.listening, timeout=5, message="relay LISTENing")
        await sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND query ILIKE 'LISTEN %'")
        await eventually(lambda: not relay.listener.listening, timeout=2, message="the listener saw its loss")
        await asyncio.sleep(0.1)  # the pass the loss woke is over
        event_id = await _stage_without_notify(db, new_event)
        await eventually(lambda: relay.listener.listening, timeout=3, message="LISTEN again")
        await eventually(lambda: _published(sql, event_id), timeout=1.0, interval=0.02,
                         message="the gap's row published when LISTEN came back")


# ---- the listener itself ----------------------------------------------------------------------

class FreezableProxy:
    """A TCP relay to PostgreSQL that can stop passing bytes while keeping both connections open:
    a connection that died without either side closing it (a dropped route, a frozen peer)."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.frozen = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pipe(src, dst) -> None:
            while data := await src.read(65536):
                if self.frozen.is_set():
                    await asyncio.Event().wait()  # swallow it and everything after
                dst.write(data)
                await dst.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def close(self) -> None:
        # the backends behind it go too: the test database is dropped after the test
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()


async def test_a_listener_whose_connection_stops_answering_counts_as_lost(kit_db_url, sql, eventually):
    url = make_url(kit_db_url)
    proxy = FreezableProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    wake = asyncio.Event()
    listener = NotifyListener(libpq_dsn(url.set(port=port).render_as_string(hide_password=False)), NOTIFY_CHANNEL,
                              wake, check_seconds=0.3, check_timeout_seconds=0.3, retry_seconds=60)
    task = asyncio.create_task(listener.run())
    try:
        await eventually(lambda: listener.listening, timeout=5, message="LISTENing through the proxy")
        await sql(f"NOTIFY {NOTIFY_CHANNEL}")
        await eventually(wake.is_set, timeout=2, message="a NOTIFY through the proxy")
        await asyncio.sleep(1.0)
        assert listener.listening, "a healthy quiet connection passes its checks"
        wake.clear()
        proxy.frozen.set()  # no FIN, no RST: only the check can tell
        await eventually(lambda: not listener.listening, timeout=3, message="the frozen connection counted as lost")
        assert wake.is_set(), "the loss wakes the worker (back to its short poll)"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await proxy.close()


async def test_outbox_pending_is_counted_again_after_a_backlog_drains_not_at_the_next_safety_poll(
        db, js, sql, new_event, eventually):
    from servicekit.outbox import OUTBOX_PENDING, add_event

    relay = OutboxRelay(db, js, batch_size=100, poll_seconds=0.1)
    async with running(relay):
        await eventually(lambda: relay.listener.listening, timeout=5, message="relay LISTENing")
        await asyncio.sleep(relay.count_interval_seconds + 0.5)
        async with db.session() as session:
            for _ in range(150):
                await add_event(session, new_event(), "user.registered")
            await session.commit()

        async def drained():
            return (await sql("SELECT count(*) FROM outbox WHERE published_at IS NULL"))[0][0] == 0

        await eventually(drained, timeout=5, message="every row published")
        # the first pass sent 100 and counted 50 left; the second sent those 50 right after, too
        # soon to count again: the count is owed one interval later, not at the next safety poll
        await eventually(lambda: OUTBOX_PENDING._value.get() == 0, timeout=relay.count_interval_seconds + 1.5,
                         message="outbox_pending back to 0")


async def test_a_quiet_listener_leaves_the_event_loop_asleep(kit_db_url, eventually):
    """psycopg's own wait wakes every 0.1 s to look for Ctrl-C; an idle service's listener must not
    (it was most of an idle service's CPU). Counted as timers the loop is asked for."""
    loop = asyncio.get_running_loop()
    timers = []
    call_later = loop.call_later

    def counting(delay, callback, *args, **kwargs):
        timers.append(delay)
        return call_later(delay, callback, *args, **kwargs)

    wake = asyncio.Event()
    listener = NotifyListener(libpq_dsn(kit_db_url), NOTIFY_CHANNEL, wake, check_seconds=30)
    task = asyncio.create_task(listener.run())
    try:
        await eventually(lambda: listener.listening, timeout=5, message="LISTENing")
        await asyncio.sleep(0.1)
        loop.call_later = counting  # type: ignore[method-assign]
        try:
            await asyncio.sleep(1.0)
        finally:
            loop.call_later = call_later  # type: ignore[method-assign]
        assert len([d for d in timers if d < 1.0]) <= 1, f"the loop was woken {len(timers)} times: {timers[:12]}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
