from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from sqlalchemy import Column, DateTime, Index, func, text
from sqlmodel import Field, SQLModel


class IngestSession(SQLModel, table=True):
    """One encoder connection to the local ingest, from on_publish to on_publish_done.

    `id` is random and opaque: it names the stream inside nginx-rtmp (HLS folders, the recording,
    thumbnails) so the stream key never does. The key itself is never stored; nginx-rtmp repeats
    it in its later callbacks, so a SHA-256 digest lets those callbacks find their session.
    """

    __tablename__ = "ingest_sessions"
    __table_args__ = (
        Index("ix_ingest_sessions_open_client", "app", "client_id", postgresql_where=text("ended_at IS NULL")),
        # a node resumes its own open sessions after a restart
        Index("ix_ingest_sessions_open_node", "node", postgresql_where=text("ended_at IS NULL")),
        # one open session per channel: two publishes with one key at once cannot both stay open
        Index("ix_ingest_sessions_open_channel", "channel_id", unique=True, postgresql_where=text("ended_at IS NULL")),
    )

    id: str = Field(primary_key=True, max_length=64)
    channel_id: str
    provider: str = "local"
    # the ingest node whose nginx-rtmp holds the publisher and whose media gateway transcodes it
    # and serves its HLS (Settings.ingest_node); drops go there
    node: str = Field(max_length=63)
    app: str
    client_id: str
    client_addr: str | None = None
    key_digest: str
    # nginx-rtmp's own name for the publisher after the relay redirect (md5 of the redirect URL);
    # the control module drops publishers by this name
    relay_name: str
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    end_reason: str | None = None
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoke_reason: str | None = None
    # the last on_update nginx-rtmp sent for this publisher (every few seconds while it is live)
    last_seen_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    next_thumbnail_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    thumbnail_key: str | None = None


@dataclass(frozen=True, repr=False)
class RtmpCallback:
    """The form nginx-rtmp posts to on_publish, on_update, on_publish_done and on_record_done.

    nginx-rtmp writes its own fields first and then appends the encoder's query string verbatim,
    so an encoder could add `&name=...` to override a field: only the first occurrence counts.
    """

    call: str
    app: str
    name: str
    client_id: str
    addr: str
    path: str
    type: str

    @classmethod
    def parse(cls, body: bytes) -> "RtmpCallback":
        first: dict[str, str] = {}
        for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
            # an encoder's URL may carry %00, which PostgreSQL refuses in any text it compares (a
            # 500): replaced as undecodable bytes are, it names no key, session or publisher
            first.setdefault(key, value.replace("\x00", "\ufffd"))
        return cls(call=first.get("call", ""), app=first.get("app", ""), name=first.get("name", ""),
                   client_id=first.get("clientid", ""), addr=first.get("addr", ""),
                   path=first.get("path", ""), type=first.get("type", ""))

    def __repr__(self) -> str:  # the name may be a stream key: never print it
        return f"RtmpCallback(call={self.call!r}, app={self.app!r}, client_id={self.client_id!r})"
