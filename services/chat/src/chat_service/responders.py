"""What the chat API answers over NATS for processes without a database (the chat edges).

`chat.api.state` <key> -> the KV snapshot of a channel/stream the edges' bucket lacks (written
there too; empty when unknown): moderation/snapshots.py `fill`.

`chat.api.history` {channelId, limit} -> {messages} (the same as `ChatService.history`: PostgreSQL
plus the not-yet-persisted tail), or {error} when it cannot (the database is away): the edge then
reads the room from the CHAT stream itself (chat_service.edge.natsstate). A queue group spreads
the requests over the API's replicas; the answer is built on the API's fixed connection pool, so
edges add no database connections.
"""

from __future__ import annotations

import logging

import orjson
from contracts.subjects import CHAT_API_HISTORY

log = logging.getLogger("chat.responders")

HISTORY_SUBJECT = CHAT_API_HISTORY
QUEUE = "chat-api"


async def serve_history(nc, chat) -> object:
    async def on_request(msg) -> None:
        try:
            req = orjson.loads(msg.data)
            channel_id, limit = str(req["channelId"]), min(max(int(req.get("limit", 50)), 1), 100)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            await msg.respond(orjson.dumps({"error": "invalid"}))
            return
        try:
            messages = await chat.history(channel_id, limit=limit)
            body = orjson.dumps({"messages": messages})
        except Exception as exc:  # the database is away: the edge reads JetStream instead
            log.warning("history request not answered", extra={"error": repr(exc)[:300]})
            body = orjson.dumps({"error": "unavailable"})
        await msg.respond(body)

    return await nc.subscribe(HISTORY_SUBJECT, queue=QUEUE, cb=on_request)


async def serve_state(nc, db, js, replicas: int = 1, *, configure: bool = True) -> object:
    from chat_service.moderation.snapshots import FILL_SUBJECT, fill, open_bucket

    kv = await open_bucket(js, replicas, configure=configure)

    async def on_request(msg) -> None:
        try:
            value = await fill(db, kv, msg.data.decode("utf-8", "replace")[:300], nc)
        except Exception as exc:  # the database is away: the edge keeps treating the key as missing
            log.warning("state request not answered", extra={"error": repr(exc)[:300]})
            value = None
        await msg.respond(value or b"")

    return await nc.subscribe(FILL_SUBJECT, queue=QUEUE, cb=on_request)
