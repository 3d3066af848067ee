"""Child process for the outbox crash tests (run by test_outbox.py with sys.executable).

Modes:
  relay-dies-after-ack DB_URL NATS_URL
      one relay pass whose `after_publish` hook kills the process with exit code 137: JetStream has
      acknowledged the publish, the row's `published_at` is never committed.
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


async def relay_dies_after_ack(db_url: str, nats_url: str) -> None:
    db = Database(db_url)
    nc = await nats.connect(nats_url)
    relay = OutboxRelay(db, nc.jetstream(), after_publish=lambda row: os._exit(137))
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
