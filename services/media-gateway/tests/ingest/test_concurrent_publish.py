"""Two encoders publishing with one key at the same moment: at most one open ingest session per
channel, whatever the interleaving (the later publish supersedes the earlier, as one after the
other would)."""

import asyncio
import secrets

from sqlalchemy import text

from contracts.requests import IngestAuthorizeReply, IngestAuthorizeRequest
from contracts.subjects import CHANNELS_INGEST_AUTHORIZE
from servicekit.db import Database

KEY = "sk_" + secrets.token_urlsafe(24)


class GatedChannels:
    """Answers channels.ingest.authorize only once `expected` requests are waiting, all at once, so
    the publishes run through the gateway's database steps truly side by side."""

    def __init__(self, expected: int):
        self.expected = expected
        self.waiting = 0
        self.gate = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()

    async def on_request(self, msg) -> None:
        # nats-py runs one subscription's callbacks one after the other: answer from a task
        task = asyncio.create_task(self.answer(msg))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def answer(self, msg) -> None:
        IngestAuthorizeRequest.model_validate_json(msg.data)
        self.waiting += 1
        if self.waiting >= self.expected:
            self.gate.set()
        await asyncio.wait_for(self.gate.wait(), 5)
        await msg.respond(IngestAuthorizeReply(allowed=True, channel_id="chan-race").to_json_bytes())


async def open_sessions(settings, channel_id: str) -> list[tuple[str, str]]:
    db = Database(settings.database_url, pool_size=1)
    try:
        async with db.session() as session:
            return list((await session.exec(text(
                "SELECT id, client_id FROM ingest_sessions WHERE channel_id = :c AND ended_at IS NULL")
                .bindparams(c=channel_id))).all())
    finally:
        await db.dispose()


async def test_concurrent_publishes_with_one_key_leave_one_open_session(rtmp, nc, media_settings, events):
    for attempt in range(5):
        gated = GatedChannels(expected=2)
        sub = await nc.subscribe(CHANNELS_INGEST_AUTHORIZE, cb=gated.on_request)
        await nc.flush()
        try:
            first, second = await asyncio.gather(rtmp("publish", KEY, clientid=f"{attempt}1"),
                                                 rtmp("publish", KEY, clientid=f"{attempt}2"))
        finally:
            await sub.unsubscribe()
        assert (first.status_code, second.status_code) == (302, 302), (first.text, second.text)
        still_open = await open_sessions(media_settings, "chan-race")
        assert len(still_open) == 1, f"attempt {attempt}: {still_open}"
        # the one left open is one of the two; the other's connection is dropped as superseded
        assert still_open[0][1] in (f"{attempt}1", f"{attempt}2")
