"""Edge tests: real NATS (JetStream), Valkey; edges started in-process on free 127.0.0.1 ports.

`FakeChat` stands in for the core's ChatService where a test is about the edge alone: it
publishes accepted messages to the real CHAT stream exactly as the core does (Nats-Msg-Id, the
stream sequence as `seq`) and answers history/resume from what it published.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from chat_service.edge.config import EdgeSettings
from chat_service.edge.core import ChatRejected
from chat_service.edge.server import Edge
from contracts.envelope import make_event
from contracts.events.chat import ChatMessage, ChatMessageDeleted, ChatUser
from devstack.ports import free_port
from devstack.stack import REPO_ROOT

# the lean WebSocket client is a test and benchmark tool, not production code: it lives in bench/
sys.path.insert(0, str(REPO_ROOT / "bench"))
from _edgeclient import connect


@dataclass
class FakeRoom:
    channel_id: str
    stream_id: str | None
    owner_id: str


@dataclass
class Sent:
    id: str
    seq: int


class FakeChat:
    def __init__(self):
        self.js = None
        self.rooms: dict[str, FakeRoom] = {}
        self.events: dict[str, list[tuple[int, str, dict]]] = {}
        self.first_seq = 1  # events below this are "gone" (resume answers recovered: false)
        self.blocks: dict[str, set[str]] = {}
        self.reject: ChatRejected | None = None

    def add_room(self, channel_id=None, stream_id=None) -> FakeRoom:
        room = FakeRoom(channel_id or uuid.uuid4().hex, stream_id, uuid.uuid4().hex)
        self.rooms[room.channel_id] = room
        return room

    async def resolve_room(self, *, channel_id=None, stream_id=None):
        for room in self.rooms.values():
            if room.channel_id == channel_id or (stream_id and room.stream_id == stream_id):
                return room
        raise LookupError(channel_id or stream_id)

    async def send(self, *, user_id, username, channel_id, content, nonce):
        if self.reject is not None:
            raise self.reject
        mid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{channel_id}:{user_id}:{nonce}")) if nonce else str(uuid.uuid4())
        message = ChatMessage(id=mid, seq=None, channel_id=channel_id, stream_id=None,
                              user=ChatUser(id=user_id, username=username, display_name=username, badges=[]),
                              content=content.strip(), created_at=datetime.now(UTC), deleted_at=None)
        event = make_event("chat.message", message, source="chat", id=mid)
        ack = await self.js.publish(f"chat.message.{channel_id}", event.to_json_bytes(), stream="CHAT",
                                    headers={"Nats-Msg-Id": mid})
        body = message.model_dump(mode="json", by_alias=True)
        events = self.events.setdefault(channel_id, [])
        if not ack.duplicate:
            events.append((ack.seq, "chat:message", {**body, "seq": ack.seq}))
        return Sent(mid, ack.seq)

    async def delete(self, channel_id, message_id):
        event = make_event("chat.deleted", ChatMessageDeleted(message_id=message_id, channel_id=channel_id,
                                                              seq=None), source="chat")
        ack = await self.js.publish(f"chat.deleted.{channel_id}", event.to_json_bytes(), stream="CHAT")
        self.events.setdefault(channel_id, []).append((ack.seq, "chat:deleted",
                                                        {"messageId": message_id, "seq": ack.seq}))
        return ack.seq

    async def history(self, channel_id, *, limit=50, before_seq=None):
        return [b for _, k, b in self.events.get(channel_id, []) if k == "chat:message"][-limit:]

    async def events_since(self, channel_id, since, *, limit=1000):
        if since + 1 < self.first_seq:
            return [], False
        return [e for e in self.events.get(channel_id, []) if e[0] > since][:limit], True

    async def blocked_users(self, user_id):
        return set(self.blocks.get(user_id, ()))


@pytest.fixture
def fake_chat():
    return FakeChat()


@pytest.fixture
async def start_edge(nats_url_for, redis_url, jwks):
    """start_edge(chat, **settings) -> a running Edge on a free port; all are stopped at the end."""
    edges: list[Edge] = []

    async def start(chat, **overrides) -> Edge:
        values = {"nats_url": nats_url_for("chat-edge"), "redis_url": redis_url, "port": free_port(),
                  "edge_id": f"edge-{len(edges) + 1}", "presence_interval_seconds": 0.2,
                  "online_ttl_seconds": 2.0, **overrides}
        edge = Edge(EdgeSettings(**values), chat=chat, jwks=jwks)
        edges.append(edge)
        await asyncio.wait_for(edge.start(), 15)
        if isinstance(chat, FakeChat):
            chat.js = edge.js
        return edge

    yield start
    for edge in reversed(edges):
        await asyncio.wait_for(edge.stop(), 15)


@pytest.fixture
async def client():
    """client(edge, token=None, origin=None) -> a connected parsing EdgeClient (signed in if token)."""
    clients = []

    async def open_client(edge, token=None, **kwargs):
        c = await connect("127.0.0.1", edge.port, **kwargs)
        clients.append(c)
        if token:
            c.send({"type": "auth", "token": token})
        return c

    yield open_client
    for c in clients:
        c.abort()
