"""Edge metrics (names are part of the ops contract: the dashboards are built on them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("chat_edge_connections", "Open WebSocket connections on this edge.")
ROOMS = Gauge("chat_edge_rooms", "Rooms with at least one member on this edge.")
DELIVERIES = Counter("chat_deliveries_total",
                     "Chat events written to sockets, counted once per recipient.")
FRAMES = Counter("chat_frames_sent_total", "WebSocket frames written to sockets by the fan-out.")
FANOUT_LATENCY = Histogram(
    "chat_fanout_latency_seconds", "From the JetStream timestamp of an event to its socket write.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5))
SLOW_CONSUMERS = Counter("chat_slow_consumer_disconnects_total",
                         "Sockets closed (1013) because their unsent bytes exceeded the send buffer.")
SEND_BUFFER = Histogram(
    "chat_edge_send_buffer_bytes", "Unsent bytes of a socket, sampled at each keepalive sweep.",
    buckets=(0, 1024, 4096, 16384, 65536, 131072, 262144, 524288))
