"""A chat client for rehearsals and tests: one WebSocket speaking API.md's protocol, recording
every message it saw (live or in history) by id and seq."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson
import websockets
from websockets.asyncio.client import ClientConnection


class ChatClient:
    """One WebSocket, API.md's protocol: frames hold events separated by newlines."""

    def __init__(self, url: str, token: str | None):
        self.url = url
        self.token = token
        self.ws: ClientConnection | None = None
        self.events: asyncio.Queue = asyncio.Queue()
        self.messages: dict[str, int] = {}  # chat:message id -> seq, as received live
        self.contents: list[str] = []
        self.last_seq = 0
        self._reader: asyncio.Task | None = None

    async def open(self, channel_id: str, since: int | None = None) -> dict:
        self.events = asyncio.Queue()
        self.ws = ws = await websockets.connect(self.url, open_timeout=10,
                                                max_size=2**22, ping_interval=None)
        self._reader = asyncio.create_task(self._read(ws))
        if self.token:
            await self.send({"type": "auth", "token": self.token})
        join: dict[str, object] = {"type": "chat:join", "channelId": channel_id}
        if since is not None:
            join["since"] = since
        await self.send(join)
        history = await self.expect("chat:history", timeout=15)
        for m in history.get("messages", []):
            self._saw(m)
        return history

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                for line in (frame if isinstance(frame, str) else frame.decode()).split("\n"):
                    if not line:
                        continue
                    event = orjson.loads(line)
                    if event["type"] == "chat:message":
                        self._saw(event["message"])
                        self.contents.append(event["message"]["content"])
                    await self.events.put(event)
        except websockets.ConnectionClosed:
            pass
        finally:
            await self.events.put({"type": "closed"})

    def _saw(self, message: dict) -> None:
        self.messages[message["id"]] = message["seq"]
        self.last_seq = max(self.last_seq, message["seq"])

    async def send(self, event: dict) -> None:
        if self.ws is None:
            raise RuntimeError("send() before open()")
        await self.ws.send(orjson.dumps(event).decode())

    async def expect(self, kind: str, timeout: float, **match) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = await asyncio.wait_for(self.events.get(), max(0.01, deadline - time.monotonic()))
            if event["type"] == "closed":
                raise ConnectionError("socket closed")
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


async def ack_or_error(client: ChatClient, nonce: str, timeout: float) -> dict:
    """The `chat:ack` or `chat:error` answering `nonce`; ConnectionError if the socket closed first."""
    deadline = time.monotonic() + timeout
    while True:
        event = await asyncio.wait_for(client.events.get(), max(0.01, deadline - time.monotonic()))
        if event["type"] == "closed":
            raise ConnectionError("socket closed")
        if event["type"] in ("chat:ack", "chat:error") and event.get("nonce") == nonce:
            return event


async def open_retrying(client: ChatClient, channel_id: str, attempts: int = 20) -> None:
    """Join, retrying while the far end is away (an edge restarting, a gateway skipping a dead one)."""
    for _ in range(attempts):
        try:
            await client.open(channel_id)
            return
        except (OSError, ConnectionError, TimeoutError, websockets.WebSocketException):
            await client.close()
            await asyncio.sleep(0.5)
    raise AssertionError(f"could not join {channel_id} at {client.url}")


async def send_until_acked(client: ChatClient, nonce: str, *, reconnect: Callable[[], Awaitable[ChatClient]],
                           counts: dict[str, int], ack_timeout: float, max_attempts: int) -> tuple[ChatClient, dict]:
    """Send `m <nonce>` until it is acked, as a client must: the same nonce every time, so the
    message is stored at most once however often an ack was lost. A dead or silent socket is
    closed and replaced by `reconnect()` (after a back-off: edges close sockets while JetStream
    elects a leader); an error answer (unavailable, unknown) is retried after a pause. Returns
    the client in use and the ack; `counts` gets "reconnects" and "errors"."""
    attempt = 0
    while True:
        try:
            await client.send({"type": "chat:send", "content": f"m {nonce}", "nonce": nonce})
            event = await ack_or_error(client, nonce, timeout=ack_timeout)
        except (ConnectionError, websockets.ConnectionClosed, TimeoutError):
            counts["reconnects"] += 1
            await client.close()
            attempt += 1
            await asyncio.sleep(min(0.1 * 2 ** min(attempt, 4), 1.0))
            client = await reconnect()
            continue
        if event["type"] == "chat:ack":
            return client, event
        counts["errors"] += 1
        attempt += 1
        assert attempt < max_attempts, f"nonce {nonce} never accepted: {event}"
        await asyncio.sleep(min(0.2 * attempt, 1.0))
