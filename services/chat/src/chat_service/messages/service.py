"""The send pipeline, deletion, history and resume: one implementation for REST and the edges.

A message is *accepted* when JetStream acknowledged its publish to the CHAT stream; only then is
it acknowledged to the sender. Its `seq` is that publish's stream sequence (see the README for
why it is not a per-room counter), so the payload on the wire has no seq: every reader takes it
from the JetStream message metadata (`decode_room_event`).

Edges use it like this::

    chat = ChatService(db, js, nc, redis, settings)
    await chat.start()            # core-NATS subscriptions that keep moderation state current
    try:
        message = await chat.send(user_id=..., username=..., channel_id=..., content=..., nonce=...)
    except ChatRejected as exc:   # exc.code is one of API.md's chat:error codes
        ...
    except ChatUnavailable:       # JetStream refused it: not stored, the client may retry
        ...
    await chat.stop()
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import orjson
from contracts.catalog import spec, subject_for
from contracts.envelope import make_event
from contracts.events.chat import ChatMessage, ChatMessageDeleted, ChatUser
from contracts.subjects import CHAT_STREAM, is_valid_token
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError
from prometheus_client import Counter
from redis.asyncio import Redis
from servicekit.db import Database
from servicekit.messaging import inject_trace_headers
from sqlmodel import col, select

from chat_service.config import Settings
from chat_service.messages.batching import TickBatch, redis_pipeline, script_sha
from chat_service.messages.models import MessageRow
from chat_service.moderation.models import StreamReplica
from chat_service.moderation.service import ChannelState, Moderation

log = logging.getLogger("chat.messages")

ACCEPTED = Counter("chat_messages_accepted_total", "Chat messages accepted (stored in JetStream)", ["via"])
REJECTED = Counter("chat_messages_rejected_total", "Chat messages refused by the send pipeline", ["code"])

# message id = uuid5(NAMESPACE, "<channelId>:<userId>:<nonce>"): the same nonce from the same
# user in the same room is the same message, whoever (edge or REST) receives the resend
NAMESPACE = uuid.UUID("6f1d3a52-2c1e-4b8e-9a57-7d0c6b1f4e21")
PERSISTER = "chat-persister"
# Redis hint "<channelId> <userId> <seq>" per message id, for the time the message may not be in
# PostgreSQL yet: resends of a nonce and deletions find it without scanning the stream
HINT_PREFIX = "chat:msg:"
RATE_PREFIX = "chat:rl"
# One round trip for the pipeline's Valkey checks. KEYS: hint, slow-mode key, rate-limit window.
# ARGV: this send's hint ("<channelId> <userId> 0": seq unknown until JetStream acks), its TTL,
# whether to look for a resend (1/0), slow-mode seconds (0 = off), limit, window seconds.
# -> {"replay", hint} | {"slow_mode", ttl} | {"rate_limited", ttl} | {"ok"}
_PACE = """
if ARGV[3] == '1' then
  local hint = redis.call('GET', KEYS[1])
  if hint then return {'replay', hint} end
end
local slow = tonumber(ARGV[4])
if slow > 0 and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', slow) then
  return {'slow_mode', redis.call('TTL', KEYS[2])}
end
local count = redis.call('INCR', KEYS[3])
local ttl = redis.call('TTL', KEYS[3])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[3], ARGV[6])
  ttl = tonumber(ARGV[6])
end
if count > tonumber(ARGV[5]) then return {'rate_limited', ttl} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {'ok'}
"""
_PACE_SHA = script_sha(_PACE)
# KEYS: slow-mode key, rate-limit window, hint ("" = keep). The DECR only while the window lives:
# a DECR of an expired key would create one without a TTL.
_RELEASE = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
if KEYS[3] ~= '' then redis.call('DEL', KEYS[3]) end
return 0
"""
# JetStream answered (an error) or nothing listens: the publish was certainly not stored. Anything
# else (a timeout, a connection lost mid-request) may have been stored.
NOT_STORED = (APIError, NoStreamResponseError)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ChatRejected(Exception):
    """The send (or delete) was refused. `code` is one of API.md's chat:error codes:
    unauthorized, banned, timed_out, rate_limited, slow_mode, followers_only, filtered,
    too_long, invalid; and `unknown` (ChatOutcomeUnknown: maybe stored, retry with the same
    nonce). `retry_after` (seconds) is set for timed_out, slow_mode, rate_limited and unknown."""

    def __init__(self, code: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class ChatUnavailable(Exception):
    """JetStream refused the publish (no stream answered, or it answered an error): the message
    is NOT stored. The client may resend with the same nonce (at most one message is ever stored)."""


class ChatOutcomeUnknown(ChatRejected):
    """JetStream did not answer in time (or the connection dropped mid-request): the message may
    or may not have been stored. Code `unknown`: the client retries with the same nonce, which
    answers the stored message if there is one (JetStream's duplicate window) and stores it
    otherwise. A ChatRejected so that every caller that turns rejections into `chat:error`
    (the edges) tells the client so instead of claiming a failure."""

    def __init__(self, message: str = "The message may or may not have been stored; "
                                      "resend it with the same nonce to find out."):
        super().__init__("unknown", message, retry_after=1.0)


@dataclass(frozen=True)
class Room:
    """A channel's chat room; `stream_id` is the channel's LIVE stream now (None when offline)."""

    channel_id: str
    stream_id: str | None
    owner_id: str


_MESSAGE_SCHEMA = spec("chat.message").dataschema


def accepted_message(message_id: str, channel_id: str, stream_id: str | None, user_id: str, username: str,
                     display_name: str, badges: list[str], content: str, now: datetime
                     ) -> tuple[ChatMessage, bytes]:
    """The message object (seq None) and its `chat.message` event bytes, without validating what
    the pipeline just built: byte for byte what `make_event(...).to_json_bytes()` writes
    (test_send_pipeline.py checks), at a twentieth of the cost on the hot path."""
    user = {"id": user_id, "username": username, "displayName": display_name, "badges": badges}
    data = {"id": message_id, "seq": None, "channelId": channel_id, "streamId": stream_id, "user": user,
            "content": content, "createdAt": now, "deletedAt": None}
    payload = orjson.dumps({"id": message_id, "type": "chat.message", "source": "chat", "time": now,
                            "specversion": "1.0", "dataschema": _MESSAGE_SCHEMA,
                            "datacontenttype": "application/json", "data": data}, option=orjson.OPT_UTC_Z)
    message = ChatMessage.model_construct(
        id=message_id, seq=None, channel_id=channel_id, stream_id=stream_id,
        user=ChatUser.model_construct(id=user_id, username=username, display_name=display_name, badges=badges),
        content=content, created_at=now, deleted_at=None)
    return message, payload


def _parse_hint(raw: bytes | str) -> tuple[str, str, int]:
    """(channel id, author id, seq) from a hint; seq 0 while the publish is not acknowledged."""
    channel_id, user_id, seq = (raw.decode() if isinstance(raw, bytes) else raw).split(" ")
    return channel_id, user_id, int(seq)


def _hint_stored(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:  # only an optimisation
        log.warning("message hint not stored", extra={"error": repr(future.exception())})


def message_id_for(channel_id: str, user_id: str, nonce: str | None) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{channel_id}:{user_id}:{nonce}") if nonce else uuid.uuid4()


def deletion_id_for(message_id: str) -> uuid.UUID:
    # deleting twice within the duplicate window stores one deletion event
    return uuid.uuid5(NAMESPACE, f"deleted:{message_id}")


def decode_room_event(msg) -> tuple[int, str, dict]:
    """A message of the CHAT stream -> (seq, kind, body).

    `msg` is a JetStream message (push or pull delivery: seq from `msg.metadata.sequence.stream`)
    or a `RawStreamMsg` from `js.get_msg` (seq from `msg.seq`). `kind` is the WebSocket event type:
    - "chat:message": body is the API message object (camelCase, `seq` filled in):
      {id, seq, channelId, streamId, user: {id, username, displayName, badges}, content,
      createdAt, deletedAt}
    - "chat:deleted": body is {messageId, channelId, seq, deletedAt}
    Raises ValueError for anything else. Parsing is orjson only (no model validation): the stream
    holds only what ChatService published, and edges decode every message once per room.
    """
    metadata = getattr(msg, "metadata", None)
    seq = metadata.sequence.stream if metadata is not None else msg.seq
    try:
        doc = orjson.loads(msg.data)
        kind, data = doc["type"], doc["data"]
        if kind == "chat.message":
            data["seq"] = seq
            return seq, "chat:message", data
        if kind == "chat.deleted":
            return seq, "chat:deleted", {"messageId": data["messageId"], "channelId": data["channelId"],
                                         "seq": seq, "deletedAt": doc["time"]}
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a chat event: {exc}") from None
    raise ValueError(f"not a chat event: {kind!r}")


# ---- content filters ---------------------------------------------------------------------------

_LEET = str.maketrans({"@": "a", "4": "a", "$": "s", "5": "s", "0": "o", "1": "i", "!": "i", "3": "e",
                       "7": "t", "+": "t"})


_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1)
def _profanity_words() -> list[str]:
    import better_profanity

    words = (Path(better_profanity.__file__).parent / "profanity_wordlist.txt").read_text().split("\n")
    return sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)


def _alternation(words) -> re.Pattern:
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in words) + r")(?![a-z0-9])")


@lru_cache(maxsize=1)
def _profanity_pattern() -> re.Pattern:
    """better_profanity's word list as one regex. Its own `contains_profanity` measured 16 ms per
    short message here (it builds every spelling variant per call), too slow for an edge's event
    loop; one compiled alternation over the same list takes microseconds. The reference for
    `contains_profanity`, which answers the same faster."""
    return _alternation(_profanity_words())


@lru_cache(maxsize=1)
def _profanity_split() -> tuple[frozenset[str], re.Pattern]:
    """(list words that are one run of [a-z0-9], a regex of the rest). A one-run word matches the
    bounded alternation exactly when it IS one of the text's maximal [a-z0-9] runs, so a set
    lookup per run answers for 855 of the 916 words; the regex is left with the 61 phrases and
    punctuated spellings (the full alternation cost ~0.2 ms per message, twice with leetspeak)."""
    words = _profanity_words()
    single = frozenset(w for w in words if _TOKEN.fullmatch(w))
    return single, _alternation([w for w in words if w not in single])


def _profane(lowered: str) -> bool:
    single, rest = _profanity_split()
    return not single.isdisjoint(_TOKEN.findall(lowered)) or rest.search(lowered) is not None


def contains_profanity(content: str) -> bool:
    lowered = content.lower()
    return _profane(lowered) or _profane(lowered.translate(_LEET))


# ---- the service -------------------------------------------------------------------------------

class ChatService:
    """Built once per process from its connections; `start()` before use, `stop()` at the end."""

    def __init__(self, db: Database, js: JetStreamContext, nc: NATS, redis: Redis, settings: Settings):
        self.db = db
        self.js = js
        self.nc = nc
        self.redis = redis
        self.settings = settings
        self.moderation = Moderation(db, ttl_seconds=settings.moderation_cache_ttl_seconds,
                                     lookup_timeout_seconds=settings.channel_lookup_timeout_seconds)
        # sends of one loop turn share a Valkey round trip and a profile query (batching.py)
        self._redis = TickBatch(redis_pipeline(redis, [_PACE]))
        self._hints = TickBatch(redis_pipeline(redis))
        self._profiles = TickBatch(self._load_profiles)
        self._room_reads = asyncio.Semaphore(settings.room_read_concurrency)
        self._started = False

    async def start(self) -> None:
        """Subscribe to the moderation events (bans apply at once). Called by send/resolve_room
        too if the owner forgot: without it, changes would only show after the cache TTL."""
        if not self._started:
            self._started = True
            await self.moderation.start(self.nc)

    async def stop(self) -> None:
        self._started = False
        await self.moderation.stop()

    # -- rooms
    async def resolve_room(self, *, channel_id: str | None = None, stream_id: str | None = None) -> Room:
        """The room of a channel, or of the channel a stream belongs to. Raises LookupError when
        chat has not heard of the channel or stream (its replicas come from channel.*/stream.*)."""
        if not self._started:
            await self.start()
        if stream_id is not None:
            known = await self.moderation.stream(stream_id) if _usable_id(stream_id) else None
            if known is None:
                raise LookupError("no such stream")
            channel_id = known[0]
        if channel_id is None or not _usable_id(channel_id):
            raise LookupError("no such channel")
        state = await self.moderation.channel(channel_id)
        if state is None:
            raise LookupError("no such channel")
        return Room(channel_id, state.live_stream_id, state.owner_id)

    async def badges(self, channel_id: str, user_id: str) -> list[str]:
        """["owner"], ["moderator"] or [] in this channel."""
        state = await self.moderation.channel(channel_id)
        return state.badges(user_id) if state else []

    async def blocked_users(self, user_id: str) -> set[str]:
        """Users whose messages `user_id` does not want to see (the edge's per-viewer filter)."""
        return set(await self.moderation.blocked_users(user_id))

    async def is_blocked_by(self, viewer_id: str, author_id: str) -> bool:
        """Whether `viewer_id` blocked `author_id` (hide the author's messages from the viewer)."""
        return author_id in await self.moderation.blocked_users(viewer_id)

    # -- send
    async def send(self, *, user_id: str, username: str | None, channel_id: str, content,
                   nonce: str | None = None, via: str = "ws") -> ChatMessage:
        """Check, store durably, and return the accepted message (with `seq`).

        Order: a resent nonce answers the original message; then banned/timed_out -> content
        1..500 after trimming (invalid/too_long) -> followers_only (owner/mods exempt) -> filters
        (banned words, profanity) -> slow mode (owner/mods exempt) -> rate limit (owner/mods
        higher) -> JetStream publish with `Nats-Msg-Id` = message id.
        Raises ChatRejected (nothing stored), ChatOutcomeUnknown (a ChatRejected with code
        `unknown`: JetStream did not answer in time, it may be stored) or ChatUnavailable
        (JetStream refused it: not stored).
        """
        if not self._started:
            await self.start()
        try:
            message = await self._send(user_id, username, channel_id, content, nonce)
        except ChatRejected as exc:
            REJECTED.labels(exc.code).inc()
            raise
        ACCEPTED.labels(via).inc()
        return message

    async def _send(self, user_id: str, username: str | None, channel_id: str, content,
                    nonce: str | None) -> ChatMessage:
        if nonce is not None and (not isinstance(nonce, str) or not 0 < len(nonce) <= 100):
            raise ChatRejected("invalid", "The nonce must be a string of 1-100 characters.")
        state = await self.moderation.channel(channel_id) if _usable_id(channel_id) else None
        if state is None:
            raise ChatRejected("invalid", "This channel does not exist.")
        message_id = str(message_id_for(channel_id, user_id, nonce))
        now = datetime.now(UTC)
        privileged = state.is_privileged(user_id)
        try:
            text = await self._checked(state, user_id, content, privileged, now)
        except ChatRejected:
            # a resent nonce answers the original message whatever the checks say now
            original = await self._replayed(message_id) if nonce is not None else None
            if original is not None:
                return original
            raise

        # the rest of the pipeline's Valkey work in ONE script and round trip, batched with the
        # sends of the same loop turn: resend hint -> slow mode -> rate limit -> hint of this send
        verdict = await self._pace(state, user_id, message_id, privileged, check_hint=nonce is not None)
        if verdict[0] == b"replay":
            seq = _parse_hint(verdict[1])[2]
            original = await self._message_at(seq) if seq else None
            if original is not None and original.id == message_id:
                return original
            # not acknowledged yet (or its outcome was unknown): publishing again is safe, the
            # stream's duplicate window answers the original if it was stored
        elif verdict[0] == b"slow_mode":
            raise ChatRejected("slow_mode", f"Slow mode: one message every {state.filters.slow_mode_seconds} "
                               "seconds.", retry_after=float(max(int(verdict[1]), 1)))
        elif verdict[0] == b"rate_limited":
            raise ChatRejected("rate_limited", "You are sending messages too fast.",
                               retry_after=float(max(int(verdict[1]), 1)))

        profile = await self._profiles.call(user_id)
        name = profile.username if profile else (username or user_id)
        message, payload = accepted_message(message_id, channel_id, state.live_stream_id, user_id, name,
                                            profile.display_name if profile else name, state.badges(user_id),
                                            text, now)
        try:
            # the trace context travels with the stored message: fan-out and persister spans continue it
            headers = inject_trace_headers({"Nats-Msg-Id": message_id})
            ack = await self.js.publish(subject_for("chat.message", channelId=channel_id), payload,
                                        headers=headers, timeout=self.settings.publish_timeout_seconds)
        except Exception as exc:
            log.warning("chat publish not acknowledged", extra={"channelId": channel_id, "error": repr(exc)})
            # the resend must not be refused by the allowance this attempt spent
            stored = not isinstance(exc, NOT_STORED)
            await self._release_pace(state, user_id, None if stored else message_id)
            if not stored:
                raise ChatUnavailable("The message could not be stored; try again.") from exc
            raise ChatOutcomeUnknown() from exc
        if ack.duplicate:
            # a resend raced the first send past the hint: JetStream's PubAck names the original
            original = await self._message_at(ack.seq)
            if original is not None:
                return original
        # the hint learns the seq (for reading the message back before the persister has it);
        # best effort and not waited for: resends are recognised by the hint set before the publish
        self._hints.call(("SET", HINT_PREFIX + message_id, f"{channel_id} {user_id} {ack.seq}",
                          "EX", CHAT_STREAM.duplicate_window_seconds)).add_done_callback(_hint_stored)
        return message.model_copy(update={"seq": ack.seq})  # a copy without validation

    async def _checked(self, state: ChannelState, user_id: str, content, privileged: bool, now: datetime) -> str:
        """The checks that need no Valkey, in the documented order; the trimmed text."""
        ban = state.ban_of(user_id, now)
        if ban is not None:
            permanent, until = ban
            if permanent:
                raise ChatRejected("banned", "You are banned from this chat.")
            raise ChatRejected("timed_out", "You are timed out in this chat.",
                               retry_after=max(1.0, (until - now).total_seconds()))
        text = self._checked_content(content)
        if state.filters.followers_only and not privileged \
                and not await self.moderation.is_follower(state.channel_id, user_id):
            raise ChatRejected("followers_only", "Only followers can chat in this channel.")
        if state.filters.subscribers_only and not privileged and state.subscription_tier(user_id, now) is None:
            raise ChatRejected("subscribers_only", "Only subscribers can chat in this channel.")
        if state.filters.pattern is not None and state.filters.pattern.search(text):
            raise ChatRejected("filtered", "Your message contains a word this channel does not allow.")
        if state.filters.profanity_filter and contains_profanity(text):
            raise ChatRejected("filtered", "Your message contains profanity, which this channel filters.")
        return text

    async def _pace(self, state: ChannelState, user_id: str, message_id: str, privileged: bool, *,
                    check_hint: bool) -> list:
        s = self.settings
        slow = 0 if privileged else state.filters.slow_mode_seconds
        limit = s.rate_limit_moderator_messages if privileged else s.rate_limit_messages
        room_user = f"{state.channel_id}:{user_id}"
        try:
            verdict = await self._redis.call((
                "EVALSHA", _PACE_SHA, 3, HINT_PREFIX + message_id, f"chat:slow:{room_user}", f"{RATE_PREFIX}:{room_user}",
                f"{state.channel_id} {user_id} 0", CHAT_STREAM.duplicate_window_seconds, int(check_hint), slow,
                limit, s.rate_limit_window_seconds))
        except Exception as exc:  # Valkey away, or this send's command failed: nothing published
            log.warning("send checks failed in Valkey", extra={"channelId": state.channel_id, "error": repr(exc)})
            raise ChatUnavailable("The message could not be checked; try again.") from exc
        kind = verdict[0]
        return [kind if isinstance(kind, bytes) else str(kind).encode(), *verdict[1:]]

    def _checked_content(self, content) -> str:
        if not isinstance(content, str):
            raise ChatRejected("invalid", "The message must be text.")
        text = content.strip()
        if not text:
            raise ChatRejected("invalid", "The message is empty.")
        if len(text) > self.settings.max_message_chars:
            raise ChatRejected("too_long", f"Messages are at most {self.settings.max_message_chars} characters.")
        if _CONTROL.search(text):
            raise ChatRejected("invalid", "The message contains control characters.")
        return text

    async def _release_pace(self, state: ChannelState, user_id: str, message_id: str | None) -> None:
        """Give back the slow-mode and rate-limit allowance a send spent, and forget its hint
        (`message_id`) when it was certainly not stored."""
        try:
            await self.redis.eval(_RELEASE, 3, f"chat:slow:{state.channel_id}:{user_id}",
                                  f"{RATE_PREFIX}:{state.channel_id}:{user_id}",
                                  HINT_PREFIX + message_id if message_id else "")
        except Exception as exc:  # Redis away as well: the window runs out on its own
            log.warning("send allowance not released", extra={"error": repr(exc)})

    async def _load_profiles(self, user_ids: list[str]) -> list:
        found = await self.moderation.profiles(user_ids)
        return [found.get(uid) for uid in user_ids]

    async def _read_hint(self, message_id: str) -> tuple[str, str, int] | None:
        try:
            raw = await self.redis.get(HINT_PREFIX + message_id)
        except Exception:
            return None
        if not raw:
            return None
        return _parse_hint(raw)

    async def _replayed(self, message_id: str) -> ChatMessage | None:
        """The message a resent nonce already produced, while its hint lives (the duplicate
        window, as JetStream's own dedup). Not looked up in PostgreSQL: that would cost every
        send a database round trip for a resend minutes late, which API.md does not promise."""
        hint = await self._read_hint(str(message_id))
        if hint is not None and hint[2]:
            original = await self._message_at(hint[2])
            if original is not None and original.id == str(message_id):
                return original
        return None

    async def _message_at(self, seq: int) -> ChatMessage | None:
        try:
            raw = await self.js.get_msg(CHAT_STREAM.name, seq)
        except NotFoundError:
            return None
        _, kind, body = decode_room_event(raw)
        return ChatMessage.model_validate(body) if kind == "chat:message" else None

    # -- delete
    async def delete(self, *, actor_id: str, message_id: str) -> None:
        """Soft-delete a message: the author, the channel owner or a moderator may. Publishes
        `chat.deleted.<channelId>` (edges remove it live; the persister sets deleted_at).
        Raises LookupError for an unknown message, ChatRejected("unauthorized") for anyone else,
        ChatUnavailable when JetStream does not acknowledge. Deleting twice changes nothing."""
        located = await self._locate(message_id)
        if located is None:
            raise LookupError("no such message")
        channel_id, author_id, already_deleted = located
        state = await self.moderation.channel(channel_id)
        if actor_id != author_id and not (state and state.is_privileged(actor_id)):
            raise ChatRejected("unauthorized", "Only the author, the channel owner or a moderator can delete it.")
        if already_deleted:
            return
        mid = str(uuid.UUID(message_id))
        event = make_event("chat.deleted", ChatMessageDeleted(message_id=mid, channel_id=channel_id),
                           source="chat", id=str(deletion_id_for(mid)))
        try:
            await self.js.publish(subject_for("chat.deleted", channelId=channel_id), event.to_json_bytes(),
                                  headers=inject_trace_headers({"Nats-Msg-Id": event.id}), timeout=5)
        except Exception as exc:
            raise ChatUnavailable("The deletion could not be stored; try again.") from exc

    async def _locate(self, message_id: str) -> tuple[str, str, bool] | None:
        """(channel id, author id, deleted?) of a message, persisted or still only in JetStream."""
        try:
            mid = uuid.UUID(message_id)
        except (ValueError, TypeError, AttributeError):
            return None
        async with self.db.session() as session:
            row = await session.get(MessageRow, mid)
        if row is not None:
            return row.channel_id, row.user_id, row.deleted_at is not None
        hint = await self._read_hint(str(mid))
        if hint is not None:
            return hint[0], hint[1], False
        return None

    async def message(self, message_id: str) -> dict | None:
        """One message as an API object (persisted, or still only in JetStream), or None."""
        try:
            mid = uuid.UUID(message_id)
        except (ValueError, TypeError, AttributeError):
            return None
        async with self.db.session() as session:
            row = await session.get(MessageRow, mid)
        if row is not None:
            return row.to_api()
        hint = await self._read_hint(str(mid))
        if hint is not None and hint[2]:
            original = await self._message_at(hint[2])
            if original is not None and original.id == str(mid):
                return original.model_dump(mode="json", by_alias=True)
        return None

    async def messages(self, message_ids) -> dict[str, dict]:
        """Several messages by id in one query (those still only in JetStream one by one)."""
        wanted = set()
        for raw in message_ids:
            try:
                wanted.add(uuid.UUID(raw))
            except (ValueError, TypeError, AttributeError):
                continue
        if not wanted:
            return {}
        async with self.db.session() as session:
            rows = (await session.exec(select(MessageRow).where(col(MessageRow.id).in_(wanted)))).all()
        found = {str(r.id): r.to_api() for r in rows}
        for mid in wanted - {r.id for r in rows}:
            message = await self.message(str(mid))
            if message is not None:
                found[str(mid)] = message
        return found

    # -- history and resume
    async def history(self, channel_id: str, *, limit: int = 50, before_seq: int | None = None,
                      stream_id: str | None = None) -> list[dict]:
        """The room's last `limit` visible messages before `before_seq` (all when None), oldest
        first, as API message objects; only those sent during `stream_id` when given.

        PostgreSQL holds what the persister committed; the rest (after the persister's ack floor)
        is read from JetStream, so a message is in history as soon as it was acknowledged to its
        sender. Deleted messages are left out."""
        floor, caught_up = await self._persisted_floor()
        tail: list[tuple[int, str, dict]] = []
        if not caught_up and _usable_id(channel_id) and (before_seq is None or before_seq > floor + 1):
            tail, _ = await self._read_room(channel_id, floor + 1, max_events=10_000, keep_last=True)
        tail_messages: dict[str, dict] = {}
        deleted: set[str] = set()
        for seq, kind, body in tail:
            if before_seq is not None and seq >= before_seq:
                continue
            if kind == "chat:deleted":
                deleted.add(body["messageId"])
            elif stream_id is None or body.get("streamId") == stream_id:
                tail_messages[body["id"]] = body

        query = select(MessageRow).where(col(MessageRow.deleted_at).is_(None))
        query = query.where(col(MessageRow.stream_id) == stream_id) if stream_id is not None else \
            query.where(col(MessageRow.channel_id) == channel_id)
        if before_seq is not None:
            query = query.where(col(MessageRow.seq) < before_seq)
        async with self.db.session() as session:
            rows = (await session.exec(query.order_by(col(MessageRow.seq).desc())
                                       .limit(limit + len(deleted)))).all()
        merged = {str(r.id): r.to_api() for r in rows}
        merged.update(tail_messages)
        visible = sorted((m for mid, m in merged.items() if mid not in deleted and not m.get("deletedAt")),
                         key=lambda m: m["seq"])
        return visible[-limit:] if limit > 0 else []

    async def stream_start(self, stream_id: str) -> datetime | None:
        """When the stream went LIVE, from chat's replica of the streams service's events (None:
        not started, or replicated before chat kept the start)."""
        async with self.db.session() as session:
            row = await session.get(StreamReplica, stream_id)
        return row.started_at if row is not None else None

    async def replay(self, channel_id: str, stream_id: str, started_at: datetime, from_offset: float,
                     to_offset: float, *, limit: int, after_seq: int | None = None) -> tuple[list[dict], bool]:
        """The stream's visible messages sent `from_offset` up to (not including) `to_offset`
        seconds after `started_at`, oldest first, only those after `after_seq` when given: at most
        `limit` of them (each with `offsetSeconds`), and whether more of the window follows.

        Read like `history`: PostgreSQL plus the not-yet-persisted tail from JetStream, deleted
        messages left out (also those whose deletion is only in the tail)."""
        # window 0 takes a message stamped a moment before the start too (another process's clock)
        low = started_at + timedelta(seconds=from_offset) if from_offset > 0 else None
        high = started_at + timedelta(seconds=to_offset)

        def inside(created: datetime) -> bool:
            return (low is None or created >= low) and created < high

        floor, caught_up = await self._persisted_floor()
        tail: list[tuple[int, str, dict]] = []
        if not caught_up and _usable_id(channel_id):
            # a message after `after_seq` has its deletion after it too
            tail, _ = await self._read_room(channel_id, max(floor, after_seq or 0) + 1, max_events=10_000,
                                            keep_last=True)
        tail_messages: dict[str, dict] = {}
        deleted: set[str] = set()
        for seq, kind, body in tail:
            if kind == "chat:deleted":
                deleted.add(body["messageId"])
            elif body.get("streamId") == stream_id and (after_seq is None or seq > after_seq) \
                    and inside(datetime.fromisoformat(body["createdAt"])):
                tail_messages[body["id"]] = body

        query = select(MessageRow).where(col(MessageRow.stream_id) == stream_id,
                                         col(MessageRow.deleted_at).is_(None), col(MessageRow.created_at) < high)
        if low is not None:
            query = query.where(col(MessageRow.created_at) >= low)
        if after_seq is not None:
            query = query.where(col(MessageRow.seq) > after_seq)
        async with self.db.session() as session:
            # one more than a page (plus what the tail deletes) tells whether the window goes on
            rows = (await session.exec(query.order_by(col(MessageRow.seq)).limit(limit + len(deleted) + 1))).all()
        merged = {str(r.id): r.to_api() for r in rows}
        merged.update(tail_messages)
        visible = sorted((m for mid, m in merged.items() if mid not in deleted and not m.get("deletedAt")),
                         key=lambda m: m["seq"])
        return [with_offset(m, started_at) for m in visible[:limit]], len(visible) > limit

    async def events_since(self, channel_id: str, since: int, *, limit: int | None = None
                           ) -> tuple[list[tuple[int, str, dict]], bool]:
        """Every chat event of the room after `since` (a seq the client saw), oldest first, as
        (seq, "chat:message"|"chat:deleted", body) like `decode_room_event`, and whether that is
        the complete set (`recovered`). Not recovered (empty list) when `since` is older than the
        stream keeps (events may be gone), newer than the stream has ever been (a seq from another
        stream's life), or more than `limit` events behind: the client then reloads history."""
        limit = limit or self.settings.resume_max_events
        if not _usable_id(channel_id) or not isinstance(since, int) or since < 0:
            return [], False
        info = await self.js.stream_info(CHAT_STREAM.name)
        first, last = info.state.first_seq, info.state.last_seq
        if since > last:
            return [], False
        if since == last:
            return [], True
        if since + 1 < first:
            return [], False
        return await self._read_room(channel_id, since + 1, max_events=limit)

    async def _persisted_floor(self) -> tuple[int, bool]:
        """(floor, caught up): every CHAT sequence up to `floor` is in PostgreSQL (the persister
        acks after its commit); caught up when nothing is pending or unacked, so the common case
        (a healthy persister) needs no JetStream read at all."""
        try:
            info = await self.js.consumer_info(CHAT_STREAM.name, PERSISTER)
        except NotFoundError:
            return 0, False
        return info.ack_floor.stream_seq or 0, info.num_pending == 0 and info.num_ack_pending == 0

    async def _read_room(self, channel_id: str, start_seq: int, *, max_events: int,
                         keep_last: bool = False) -> tuple[list[tuple[int, str, dict]], bool]:
        """Read the room's events from `start_seq` on with a short-lived consumer (at most
        `room_read_concurrency` at once). More than `max_events` pending: ([], False), or with
        `keep_last` the last `max_events` of them."""
        async with self._room_reads:
            return await self._read_room_now(channel_id, start_seq, max_events=max_events, keep_last=keep_last)

    async def _read_room_now(self, channel_id: str, start_seq: int, *, max_events: int,
                             keep_last: bool) -> tuple[list[tuple[int, str, dict]], bool]:
        subject = f"chat.*.{channel_id}"
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq),
                                ack_policy=AckPolicy.NONE, inactive_threshold=30.0, mem_storage=True,
                                num_replicas=1, max_ack_pending=-1)
        sub = await self.js.pull_subscribe(subject, stream=CHAT_STREAM.name, config=config)
        events: list[tuple[int, str, dict]] = []
        try:
            pending = (await sub.consumer_info()).num_pending
            if pending > max_events and not keep_last:
                return [], False
            deadline = asyncio.get_running_loop().time() + self.settings.tail_read_timeout_seconds
            while len(events) < pending:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    log.warning("room read timed out", extra={"channelId": channel_id, "read": len(events),
                                                              "pending": pending})
                    return events[-max_events:], False
                try:
                    msgs = await sub.fetch(min(pending - len(events), 500), timeout=min(left, 1.0))
                except TimeoutError:
                    continue
                for msg in msgs:
                    try:
                        events.append(decode_room_event(msg))
                    except ValueError:
                        log.error("undecodable chat event skipped", extra={"subject": msg.subject})
            return (events[-max_events:], len(events) <= max_events) if keep_last else (events, True)
        finally:
            try:
                await sub.unsubscribe()
                await self.js.delete_consumer(CHAT_STREAM.name, sub._consumer)
            except Exception:
                pass  # the server drops it after inactive_threshold anyway


def with_offset(message: dict, started_at: datetime) -> dict:
    """The message with `offsetSeconds`: seconds from the stream's start to its createdAt (never
    below 0: the two instants come from different processes' clocks), to the millisecond."""
    created = datetime.fromisoformat(message["createdAt"])
    return {**message, "offsetSeconds": round(max(0.0, (created - started_at).total_seconds()), 3)}


def _usable_id(value) -> bool:
    """An id that can be a NATS subject token and a database key (else it names nothing)."""
    return isinstance(value, str) and 0 < len(value) <= 200 and is_valid_token(value) \
        and not _CONTROL.search(value)
