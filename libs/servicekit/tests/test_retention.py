"""Retention (issue 14, item 10): the shared rules prune the inbox and dead letters of every
service; rows younger than the retention period stay."""

from __future__ import annotations

import asyncio
import time
import uuid

from servicekit.app import ServiceRuntime
from servicekit.retention import Prune, RetentionJob
from servicekit.settings import ServiceSettings


async def test_old_inbox_rows_and_dead_letters_are_pruned_and_recent_ones_kept(db, sql, kit_db_url):
    for consumer, age_days in [("c", 30), ("c", 9), ("c", 7), ("c", 0)]:
        await sql("INSERT INTO inbox (consumer, event_id, processed_at) "
                  "VALUES (:c, :e, now() - make_interval(days => :d))",
                  c=consumer, e=str(uuid.uuid4()), d=age_days)
    for age_days in (60, 31, 29, 1):
        await sql("INSERT INTO dead_letters (id, consumer, subject, deliveries, error, payload, headers, "
                  "recorded_at) VALUES (:id, 'c', 's', 5, 'e', '\\x00', '{}', "
                  "now() - make_interval(days => :d))", id=uuid.uuid4(), d=age_days)

    settings = ServiceSettings(database_url=kit_db_url)  # the defaults: inbox 8 days, dead letters 30
    runtime = ServiceRuntime(settings, uses_redis=False)
    job = RetentionJob(db, runtime.prunes, batch_size=1)  # batches of one: the loop must go on

    assert await job.run_once() == {"inbox": 2, "dead_letters": 2}
    ages = await sql("SELECT round(extract(epoch FROM now() - processed_at) / 86400) FROM inbox ORDER BY 1")
    assert [int(r[0]) for r in ages] == [0, 7]
    ages = await sql("SELECT round(extract(epoch FROM now() - recorded_at) / 86400) "
                     "FROM dead_letters ORDER BY 1")
    assert [int(r[0]) for r in ages] == [1, 29]
    assert await job.run_once() == {"inbox": 0, "dead_letters": 0}


async def test_a_rule_for_a_table_this_service_lacks_is_skipped(db, sql):
    await sql("INSERT INTO inbox (consumer, event_id, processed_at) "
              "VALUES ('c', 'e', now() - interval '1 year')")
    job = RetentionJob(db, [Prune("no_such_table", "true"), Prune("inbox", "true")])
    assert await job.run_once() == {"inbox": 1}


async def test_the_job_prunes_again_every_interval_until_stopped(db, sql):
    job = RetentionJob(db, [Prune("inbox", "processed_at < now() - interval '8 days'")], interval_seconds=0.1)
    running = asyncio.create_task(job.run())
    await asyncio.sleep(0.25)  # a pass or more with nothing to prune
    event = str(uuid.uuid4())
    await sql("INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('c', :e, now() - interval '1 year')",
              e=event)
    deadline = time.monotonic() + 5
    while await sql("SELECT 1 FROM inbox WHERE event_id = :e", e=event):
        assert time.monotonic() < deadline, "a later pass did not prune the row"
        await asyncio.sleep(0.05)
    job.stop()
    await asyncio.wait_for(running, 1)
