from contracts.subjects import CHAT_STREAM, EVENTS_STREAM
from pydantic import Field
from servicekit.settings import ServiceSettings

_HOUR, _DAY = 3600, 86400


class Settings(ServiceSettings):
    service_name: str = "chat"
    port: int = 8104

    # API.md: content is 1-500 characters after trimming
    max_message_chars: int = Field(500, ge=1)
    # API.md: 20 messages per 30 s per user per room; owner and moderators get more
    rate_limit_messages: int = Field(20, ge=1)
    rate_limit_moderator_messages: int = Field(100, ge=1)
    rate_limit_window_seconds: int = Field(30, ge=1)

    # a send whose publish JetStream has not acknowledged after this long answers "unknown"
    # (it may still be stored: the client retries with the same nonce)
    publish_timeout_seconds: float = Field(5.0, gt=0)

    # the persister runs inside the API process unless a separate `persist` process does it
    persister_enabled: bool = True
    persister_batch: int = Field(500, ge=1, le=10_000)
    # how long one fetch waits for messages before asking again (also the shutdown latency)
    persister_fetch_timeout_seconds: float = Field(1.0, gt=0)
    # a batch delivered to a persister that died unacked is redelivered after this long (a
    # batch commits in milliseconds; this bounds the pause in persistence after a crash)
    persister_ack_wait_seconds: float = Field(10.0, gt=0)
    # after a partial batch, wait this long for more before the next transaction (only the
    # PostgreSQL copy waits; acks and history do not: messages/persister.py)
    persister_linger_seconds: float = Field(0.1, ge=0, le=5)

    # retention (chat_service/retention.py). A deletion's tombstone must outlive every delivery
    # of its message to the persister: the CHAT stream keeps a message one day (its max age, the
    # floor), the default doubles it.
    message_tombstones_retention_hours: float = Field(2 * CHAT_STREAM.max_age_seconds / _HOUR,
                                                      gt=CHAT_STREAM.max_age_seconds / _HOUR)
    # a removed moderator/ban/follow/block stays as a tombstone so that a late, older add changes
    # nothing; events come again at most while EVENTS keeps them (7 days, the floor, as for the
    # inbox). Expired timeouts go after the same time.
    replica_tombstones_retention_days: float = Field(8, ge=EVENTS_STREAM.max_age_seconds / _DAY)
    # chat history is kept (VOD chat replay reads it); set this to delete messages older than it
    messages_retention_days: float | None = Field(None, gt=CHAT_STREAM.max_age_seconds / _DAY)

    # chat replay (GET /api/streams/{id}/messages?fromOffset=&toOffset=): a longer window is
    # refused (422) rather than cut short, so an answer always covers the window asked for; its
    # messages come in pages of `limit` (nextCursor) however busy the chat was
    replay_max_window_seconds: float = Field(600.0, gt=0)

    # safety net behind the core-NATS cache updates: a cached moderation entry is reloaded from
    # the replicas after this long even if no update reached this process
    moderation_cache_ttl_seconds: float = Field(5.0, gt=0)
    # a channel missing from the replica (its channel.created not here yet) is asked of the
    # channels service for this long before chat says it does not exist
    channel_lookup_timeout_seconds: float = Field(1.0, gt=0)

    # events_since answers at most this many events; a client further behind reloads history
    resume_max_events: int = Field(1000, ge=1)
    # how long the REST history waits for JetStream when reading the not-yet-persisted tail
    tail_read_timeout_seconds: float = Field(2.0, gt=0)
    # room reads (history tail, resume) running at once per process, each a short-lived JetStream
    # consumer: a join storm (an edge restart, 5,000 viewers rejoining) otherwise creates thousands
    # at once and meets the server's consumer limit; the rest wait their turn
    room_read_concurrency: int = Field(16, ge=1)
