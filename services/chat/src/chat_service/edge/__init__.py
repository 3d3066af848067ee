"""The WebSocket edge process: rooms, fan-out, presence."""
