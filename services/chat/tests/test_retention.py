"""Chat's tombstones expire once nothing can bring their message or event back; history stays
unless an operator sets a horizon (issue 14, item 10)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from chat_service.config import Settings
from chat_service.retention import prunes
from pydantic import ValidationError
from servicekit.db import Database, libpq_dsn
from servicekit.retention import RetentionJob


async def _prune(url: str, settings: Settings) -> dict[str, int]:
    db = Database(url)
    try:
        return await RetentionJob(db, prunes(settings)).run_once()
    finally:
        await db.dispose()


def _ago(hours: float) -> str:
    return f"now() - make_interval(secs => {hours * 3600})"


async def test_message_tombstones_outlive_the_chat_stream_and_then_go(chat_db_url):
    settings = Settings(database_url=chat_db_url)
    assert settings.message_tombstones_retention_hours == 48  # twice the CHAT stream's day
    with psycopg.connect(libpq_dsn(chat_db_url), autocommit=True) as conn:
        for hours in (72, 49, 47, 23, 0):
            conn.execute(f"INSERT INTO chat_message_tombstones (id, deleted_at) VALUES (%s, {_ago(hours)})",
                         (uuid.UUID(int=hours),))
    assert (await _prune(chat_db_url, settings))["chat_message_tombstones"] == 2
    with psycopg.connect(libpq_dsn(chat_db_url)) as conn:
        left = sorted(r[0].int for r in conn.execute("SELECT id FROM chat_message_tombstones"))
    assert left == [0, 23, 47]


def test_a_tombstone_horizon_inside_the_chat_streams_age_is_refused():
    # the message could still be delivered to the persister after its tombstone was gone
    with pytest.raises(ValidationError):
        Settings(message_tombstones_retention_hours=12)
    with pytest.raises(ValidationError):
        Settings(replica_tombstones_retention_days=3)
    with pytest.raises(ValidationError):
        Settings(messages_retention_days=0.5)


async def test_replica_tombstones_and_expired_timeouts_go_after_the_events_horizon(chat_db_url):
    days = 86400 / 3600
    with psycopg.connect(libpq_dsn(chat_db_url), autocommit=True) as conn:
        for table, a, b in (("chat_moderators", "channel_id", "user_id"), ("chat_follows", "channel_id", "user_id"),
                            ("chat_blocks", "blocker_id", "blocked_id")):
            for key, present, age in (("old-removed", False, 9), ("new-removed", False, 6), ("old-present", True, 90)):
                conn.execute(f"INSERT INTO {table} ({a}, {b}, present, changed_at) "
                             f"VALUES ('c', %s, %s, {_ago(age * days)})", (key, present))
        for key, present, until, age in (
                ("old-unbanned", False, None, 9), ("new-unbanned", False, None, 6),
                ("permanent", True, None, 90), ("timeout-long-over", True, 9, 10),
                ("timeout-just-over", True, 1, 10), ("timeout-running", True, -1, 10)):
            until_sql = "NULL" if until is None else _ago(until * days)
            conn.execute(f"INSERT INTO chat_bans (channel_id, user_id, until, present, changed_at) "
                         f"VALUES ('c', %s, {until_sql}, %s, {_ago(age * days)})", (key, present))

    assert {t: n for t, n in (await _prune(chat_db_url, Settings(database_url=chat_db_url))).items()
            if t != "chat_message_tombstones"} == {
        "chat_moderators": 1, "chat_follows": 1, "chat_blocks": 1, "chat_bans": 2}

    with psycopg.connect(libpq_dsn(chat_db_url)) as conn:
        for table, b in (("chat_moderators", "user_id"), ("chat_follows", "user_id"), ("chat_blocks", "blocked_id")):
            assert sorted(r[0] for r in conn.execute(f"SELECT {b} FROM {table}")) == ["new-removed", "old-present"]
        assert sorted(r[0] for r in conn.execute("SELECT user_id FROM chat_bans")) == [
            "new-unbanned", "permanent", "timeout-just-over", "timeout-running"]


async def test_messages_are_kept_unless_a_horizon_is_set(chat_db_url):
    with psycopg.connect(libpq_dsn(chat_db_url), autocommit=True) as conn:
        for seq, days_old in ((1, 400), (2, 20)):
            conn.execute(f"INSERT INTO chat_messages (id, seq, channel_id, user_id, username, display_name, "
                         f"badges, content, created_at, persisted_at) VALUES (%s, %s, 'c', 'u', 'u', 'U', '[]', "
                         f"'hi', {_ago(days_old * 24)}, now())", (uuid.uuid4(), seq))

    assert "chat_messages" not in await _prune(chat_db_url, Settings(database_url=chat_db_url))
    assert (await _prune(chat_db_url, Settings(database_url=chat_db_url, messages_retention_days=30))
            )["chat_messages"] == 1
    with psycopg.connect(libpq_dsn(chat_db_url)) as conn:
        assert [r[0] for r in conn.execute("SELECT seq FROM chat_messages")] == [2]
