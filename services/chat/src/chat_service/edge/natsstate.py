"""The edge's data, over NATS only: the edge process holds no PostgreSQL connection.

- Moderation state (channel owner, moderators, bans/timeouts, filters, live stream, follows,
  blocks, profiles): the JetStream KV snapshots the chat API's replica consumer writes
  (`chat_service.moderation.snapshots`), cached by the same `Moderation` class the API uses, and
  changed at once by the core-NATS events every edge subscribes to (bans apply immediately).
- History on join: a NATS request to the chat API (`chat.api.history`, PostgreSQL + tail on the
  API's own connection pool). When no API answers, or its database is away, the edge reads the
  room from the CHAT stream itself (retention: one day), so joins keep working.
- Sends, resume (`events_since`) and fan-out were JetStream and Valkey already.
"""

from __future__ import annotations

import logging

import orjson
from contracts.subjects import CHAT_STREAM

from chat_service.messages.service import ChatService
from chat_service.moderation.service import Moderation
from chat_service.moderation.snapshots import KvReplicas, open_bucket
from chat_service.responders import HISTORY_SUBJECT

log = logging.getLogger("chat.edge.state")


class EdgeChat(ChatService):
    """ChatService for an edge: moderation from the KV bucket, history from the API or JetStream."""

    def __init__(self, runtime, settings):
        super().__init__(None, runtime.js, runtime.nats, runtime.redis, settings)
        self.replicas = KvReplicas(None, runtime.nats)  # the bucket is opened in start()
        self.moderation = Moderation(self.replicas, ttl_seconds=settings.moderation_cache_ttl_seconds)
        self.jetstream_replicas = settings.jetstream_replicas
        self.configures_streams = runtime.configures_streams
        self.history_timeout = getattr(settings, "history_request_timeout_seconds", 1.0)

    async def start(self) -> None:
        if self.replicas.kv is None:
            self.replicas.kv = await open_bucket(self.js, self.jetstream_replicas,
                                                 configure=self.configures_streams)
        await super().start()

    async def history(self, channel_id: str, *, limit: int = 50, before_seq: int | None = None,
                      stream_id: str | None = None) -> list[dict]:
        if before_seq is None and stream_id is None:
            try:
                reply = await self.nc.request(HISTORY_SUBJECT, orjson.dumps({"channelId": channel_id, "limit": limit}),
                                              timeout=self.history_timeout)
                body = orjson.loads(reply.data)
                if "messages" in body:
                    return body["messages"]
            except Exception as exc:  # no responder, timeout: the stream has the last day
                log.info("history from the chat API failed; reading JetStream", extra={"error": repr(exc)})
        return await self.stream_history(channel_id, limit=limit)

    async def stream_history(self, channel_id: str, *, limit: int = 50) -> list[dict]:
        """The room's last `limit` visible messages from the CHAT stream alone (what it still keeps).

        A stream read goes forwards only, so the read starts a window before the stream's end and
        widens it (x8) until the window holds `limit` visible messages or reaches the stream's
        start: a busy room is read from near the end, not from a day back."""
        info = await self.js.stream_info(CHAT_STREAM.name)
        first, last = info.state.first_seq, info.state.last_seq
        cap = 4 * limit + 500  # room events one read may return before it keeps only the last ones
        window = 1000
        while True:
            start = max(first, last - window + 1)
            events, complete = await self._read_room(channel_id, start, max_events=cap)
            if not complete:  # the window holds more than cap of this room's events: keep the last
                events, _ = await self._read_room(channel_id, start, max_events=cap, keep_last=True)
            deleted = {body["messageId"] for _, kind, body in events if kind == "chat:deleted"}
            visible = [body for _, kind, body in events if kind == "chat:message" and body["id"] not in deleted]
            if not complete or len(visible) >= limit or start <= first:
                return visible[-limit:] if limit > 0 else []
            window *= 8
