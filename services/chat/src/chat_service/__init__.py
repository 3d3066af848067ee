"""Chat service: durable chat in JetStream, persisted to PostgreSQL, fanned out by WebSocket edges."""
