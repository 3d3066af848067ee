"""Who may publish and subscribe to what on NATS: one user per service process kind.

Each service connects as its own NATS user (``nats://<user>:<password>@host``); the server admits
exactly the subjects below and refuses the rest (a permissions violation). The table is written
in the platform's terms (events from the catalog, requests, streams, buckets, core subscriptions)
and turned into NATS subjects here, so the permission of an event or request moves with its
contract: ``devstack`` writes the nats-server configuration from it, ``deploy/k8s/base/nats.yaml``
holds the same text (checked by tests/deploy), and ``libs/contracts/tests/test_access.py`` checks it
against the catalog and the requests (nobody publishes an event another service owns, only the
responder hears a request).

What a stream key passes through: ``channels.ingest.authorize`` may be heard only by channels
and asked only by media-gateway. Replies go to the asker's own inbox prefix
(``_INBOX.<user>.>``), which no other user may subscribe to; responders answer through
``allow_responses`` (the reply subject of a request they received, once) instead of a publish
right on every inbox.

Creating or updating a stream sets the subjects it captures: a user allowed to could make a
stream capture ``channels.ingest.authorize`` and read stream keys out of it. So one service user
configures every stream and bucket (``configures``): channels, which holds the stream keys anyway.
The others look their streams up and wait for them (servicekit.messaging.ensure_streams with
``configure=False``); the admin may do anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from contracts import requests as r
from contracts import subjects as s
from contracts.catalog import CATALOG, EventType
from contracts.subjects import BUCKETS, CHAT_STREAM, EVENTS_STREAM, STREAMS, VIEWERS_STREAM, StreamSpec

ADMIN_USER = "admin"
"""The operator's and the test fixtures' user: every subject (stream edits, test publishers)."""


def inbox_prefix(user: str) -> str:
    """The prefix a user's client puts on its reply subjects (nats-py ``inbox_prefix``): replies
    to its requests, JetStream API answers and push-consumer deliveries all arrive under it."""
    return f"_INBOX.{user}"


def kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


@dataclass(frozen=True, slots=True)
class Permissions:
    """A nats-server user's ``permissions`` block."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool


@dataclass(frozen=True, slots=True)
class Access:
    """What one kind of process does on NATS, in the platform's terms."""

    service: str
    """The catalog's publisher name this user speaks for (the chat edges speak for chat)."""
    events: tuple[str, ...] = ()
    """Event types it publishes (outbox relay, or straight to JetStream / core NATS)."""
    streams: tuple[StreamSpec, ...] = ()
    """Streams it looks up at start, waiting for them (servicekit.messaging.ensure_streams)."""
    configures: bool = False
    """Whether it creates and updates every stream and bucket of the platform (one user does)."""
    consumes: tuple[StreamSpec, ...] = ()
    """Streams it reads through consumers: durable pull (inbox), ordered push, ephemeral pull."""
    reads: tuple[StreamSpec, ...] = ()
    """Streams it reads single messages of, by sequence."""
    buckets: tuple[str, ...] = ()
    """KV buckets it opens (waiting for them), reads and writes."""
    listens: tuple[str, ...] = ()
    """Core NATS subscriptions (subjects or wildcards)."""
    sends: tuple[str, ...] = ()
    """Core NATS publishes that are no catalog event."""
    asks: tuple[str, ...] = ()
    """Request subjects it sends requests on."""
    answers: tuple[str, ...] = ()
    """Request subjects it answers (subscribes to; replies through allow_responses)."""

    def permissions(self, user: str) -> Permissions:
        publish: list[str] = []
        subscribe: list[str] = [f"{inbox_prefix(user)}.>"]
        for event_type in self.events:
            publish.append(CATALOG[event_type].wildcard_subject)
        if self.events:
            # account info (no stream's content): a publisher asks it after a refused publish to
            # tell a bad message from JetStream being away (servicekit.outbox parks only the first)
            publish.append("$JS.API.INFO")
        publish += self.sends
        publish += self.asks
        subscribe += self.listens
        subscribe += self.answers
        for stream in self.streams:
            publish.append(f"$JS.API.STREAM.INFO.{stream.name}")
        if self.configures:
            for name in [*(st.name for st in STREAMS), *(b.stream for b in BUCKETS)]:
                publish += _configure(name)
        for stream in self.consumes:
            publish += _consume(stream.name)
        for stream in self.reads:
            publish += _read(stream.name)
        for bucket in self.buckets:
            publish += [*_read(kv_stream(bucket)), f"$KV.{bucket}.>"]
        return Permissions(tuple(dict.fromkeys(publish)), tuple(dict.fromkeys(subscribe)),
                           allow_responses=bool(self.answers))


def _configure(stream: str) -> list[str]:
    return [f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.CREATE.{stream}",
            f"$JS.API.STREAM.UPDATE.{stream}"]


def _consume(stream: str) -> list[str]:
    # create (ephemeral: CREATE.<stream>; named: CREATE.<stream>.<consumer>[.<filter>]; the older
    # DURABLE.CREATE), look up, delete, pull the next batch, acknowledge, answer flow control
    return [f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>", f"$JS.API.CONSUMER.INFO.{stream}.>",
            f"$JS.API.CONSUMER.DELETE.{stream}.>", f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
            f"$JS.ACK.{stream}.>", f"$JS.FC.{stream}.>"]


def _read(stream: str) -> list[str]:
    return [f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>"]


def _published_by(service: str) -> tuple[str, ...]:
    return tuple(t for t, spec in CATALOG.items() if spec.publisher == service)


E = EventType

USERS: MappingProxyType[str, Access] = MappingProxyType({
    "auth": Access(
        service="auth",
        events=_published_by("auth"),
        streams=(EVENTS_STREAM,),
    ),
    "channels": Access(
        service="channels",
        events=_published_by("channels"),
        streams=(EVENTS_STREAM, VIEWERS_STREAM),
        configures=True,
        # inbox consumers of user.* and stream.*; the viewer counts through an ordered consumer
        consumes=(EVENTS_STREAM, VIEWERS_STREAM),
        answers=(r.INGEST_AUTHORIZE.subject, r.CHANNEL_GET.subject, r.SIMULCAST_DESTINATIONS.subject,
                 r.PROVIDER_LOOKUP.subject),
    ),
    "streams": Access(
        service="streams",
        events=_published_by("streams"),
        streams=(EVENTS_STREAM, VIEWERS_STREAM),
        consumes=(EVENTS_STREAM,),
        # the edges' room counts, summed into viewer counts
        listens=(s.CHAT_PRESENCE_ALL,),
        asks=(r.CHANNEL_GET.subject,),
    ),
    "chat": Access(
        service="chat",
        events=(E.CHAT_MESSAGE, E.CHAT_DELETED, E.CHAT_REPORT_CREATED),
        streams=(EVENTS_STREAM, CHAT_STREAM),
        # the replica consumer (EVENTS); the persister and history reads (CHAT)
        consumes=(EVENTS_STREAM, CHAT_STREAM),
        reads=(CHAT_STREAM,),
        buckets=(s.CHAT_STATE_BUCKET,),
        # the moderation cache applies these at once (chat_service.moderation.service)
        listens=("channel.>", "user.>", "stream.>", "subscription.>"),
        asks=(r.CHANNEL_GET.subject,),
        answers=(s.CHAT_API_HISTORY, s.CHAT_API_STATE),
    ),
    "chat-edge": Access(
        service="chat",
        events=(E.CHAT_MESSAGE, E.CHAT_DELETED, E.CHAT_PRESENCE),
        streams=STREAMS,
        # one ordered consumer per room; history and resume read CHAT with ephemeral consumers
        consumes=(CHAT_STREAM,),
        reads=(CHAT_STREAM,),
        buckets=(s.CHAT_STATE_BUCKET,),
        listens=("channel.>", "user.>", "stream.>", "subscription.>", s.CHAT_ROOM_ALL),
        sends=(s.CHAT_ROOM_ALL,),
        asks=(s.CHAT_API_HISTORY, s.CHAT_API_STATE),
    ),
    "media-gateway": Access(
        service="media-gateway",
        events=_published_by("media-gateway"),
        streams=(EVENTS_STREAM,),
        # stream key rotations and end requests drop a live publish
        consumes=(EVENTS_STREAM,),
        # a drop of a session held by another ingest node goes to that node, which answers it
        asks=(r.INGEST_AUTHORIZE.subject, r.SIMULCAST_DESTINATIONS.subject, s.INGEST_NODE_DROP_ALL,
              r.PROVIDER_LOOKUP.subject),
        answers=(s.INGEST_NODE_DROP_ALL,),
        # every node hears it; the one holding the channel's live session asks for the new set
        listens=(s.CHANNEL_DESTINATIONS_UPDATED,),
    ),
})
"""NATS user name -> what it does. A service's processes share its user; the chat edges
(``python -m chat_service edge``) have their own, since they face the internet's WebSockets and
need no database, outbox or replica consumer."""


def permissions(user: str) -> Permissions:
    return USERS[user].permissions(user)


def configures_streams(user: str | None) -> bool:
    """Whether a client logged in as `user` creates and updates streams and buckets (None: a
    server without users, where every service configures its own as before)."""
    return user is None or user not in USERS or USERS[user].configures
