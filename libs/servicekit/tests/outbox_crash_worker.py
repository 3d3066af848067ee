"""Child process for the outbox crash tests (run by test_outbox.py with sys.executable).

Modes:
  relay-dies-after-ack DB_URL NATS_URL
      one relay pass whose JetStream kills the process with exit code 137 as soon as it acknowledged
      a publish: the row's `published_at` is never committed.
  commit-then-die DB_URL
      stage an event, commit, print its id and die with 137 before any relay ran.
Exit code 3 means the process got past the point where it should have died.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import nats
from contracts.events.users import UserProfile
from servicekit.db import Database
from servicekit.outbox import OutboxRelay, stage_event


class DiesAfterAck:
    """JetStream as the relay sees it, except that the process dies right after the first ack."""

    def __init__(self, js):
        self._js = js

    async def publish(self, *args, **kwargs):
        await self._js.publish(*args, **kwargs)
        os._exit(137)

    def __getattr__(self, name):
        return getattr(self._js, name)


async def relay_dies_after_ack(db_url: str, nats_url: str) -> None:
    db = Database(db_url)
    nc = await nats.connect(nats_url)
    relay = OutboxRelay(db, DiesAfterAck(nc.jetstream()))
    published = await relay.publish_pending()
    print(f"relay pass returned {published} without dying", file=sys.stderr, flush=True)
    sys.exit(3)


async def commit_then_die(db_url: str) -> None:
    db = Database(db_url)
    profile = UserProfile(user_id=str(uuid.uuid4()), username="crash_victim", display_name="Crash", avatar=None)
    async with db.session() as session:
        event = await stage_event(session, "user.registered", profile, source="auth", key=profile.user_id)
        await session.commit()
    print(event.id, flush=True)
    os._exit(137)


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "relay-dies-after-ack":
        asyncio.run(relay_dies_after_ack(*args))
    elif mode == "commit-then-die":
        asyncio.run(commit_then_die(*args))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.exit(3)


if __name__ == "__main__":
    main()
