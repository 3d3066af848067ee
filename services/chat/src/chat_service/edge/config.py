"""Settings of one WebSocket edge process (`python -m chat_service edge`, env EDGE_ID / PORT)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from chat_service.edge.core import CoreSettings


class EdgeSettings(CoreSettings):
    service_name: str = "chat-edge"
    port: int = 8111
    # names this process in presence snapshots; two edges must never share one
    edge_id: str = "edge-1"

    # Browsers send Origin; a page on another site must not ride a viewer's session (CSWSH).
    # Clients without Origin (encoders, bots, tests) carry no ambient credentials and are let in.
    allowed_origins: tuple[str, ...] = ("http://localhost:8080", "http://127.0.0.1:8080")
    allow_missing_origin: bool = True

    # Fan-out: a room's events are coalesced into one frame per tick; a room quiet for a whole
    # tick is flushed at once (the first event after a pause is not delayed).
    tick_seconds: float = Field(0.015, gt=0, le=1)
    # A big room's tick grows so its frames stay within this many socket writes per second (per
    # room, per edge): a write costs ~7 us here and as much again in the gateway, whatever the
    # frame holds, and above ~66 msg/s a 15 ms tick meant 67 frames/s to every member. 1000
    # members -> 40 ms, capped at max_tick_seconds; rooms under 375 members keep tick_seconds.
    room_writes_per_second: int = Field(25_000, ge=1)
    max_tick_seconds: float = Field(0.04, gt=0, le=1)
    # API.md: client frames over 4 KiB close the socket with 1009
    max_client_frame_bytes: int = Field(4096, ge=256)
    # A socket whose unsent bytes exceed this is a slow consumer: closed with 1013 and counted.
    # 256 KiB is about a second of a 1,000 msg/s room.
    send_buffer_bytes: int = Field(256 * 1024, ge=4096)
    # seconds a closing socket may take to flush its close frame before it is aborted
    close_timeout_seconds: float = Field(2.0, gt=0)

    # keepalive: a ping after this much silence from the client; closed after idle_timeout
    ping_interval_seconds: float = Field(20.0, gt=0)
    idle_timeout_seconds: float = Field(60.0, gt=0)
    handshake_timeout_seconds: float = Field(10.0, gt=0)
    # per-connection client frames (any type): a token bucket; beyond it the socket is closed 1008
    client_frames_per_second: float = Field(10.0, gt=0)
    client_frames_burst: int = Field(30, ge=1)
    # frames waiting while an earlier one (auth, join, send) is still being handled; a client that
    # reconnects resends its unacknowledged nonces at once, so this is well above a burst of sends
    client_backlog: int = Field(64, ge=1)
    # one chat:typing per user per this many seconds is relayed
    typing_interval_seconds: float = Field(2.0, ge=0)

    # presence: chat.presence.<channelId> and the online list are refreshed this often
    presence_interval_seconds: float = Field(2.0, gt=0)
    # an online-list entry not refreshed for this long is dropped (its edge died)
    online_ttl_seconds: float = Field(10.0, gt=0)
    # chat:users lists at most this many users (count is always the full number)
    online_list_limit: int = Field(100, ge=0)
    history_limit: int = Field(50, ge=1, le=100)
    # the chat API answers history requests; past this the edge reads the CHAT stream itself
    history_request_timeout_seconds: float = Field(1.0, gt=0)

    # no database: moderation state and history come over NATS (edge/natsstate.py)
    required_in_prod: ClassVar[frozenset[str]] = CoreSettings.required_in_prod - {"database_url"}
