"""Replicas of other services' state that chat decides with (fed by inbox consumers on EVENTS).

Chat never reads another service's tables: these rows are built from events (channel.*, user.*,
stream.*, subscription.*) and read by `moderation.service` on behalf of the REST path and the edges.
"""

from datetime import datetime

from sqlalchemy import Column, DateTime, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _time(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class Membership(SQLModel):
    """A pair of events that add and remove one key (moderator, ban, follow, block).

    Events reach the replica out of order (relays claim outbox rows with SKIP LOCKED, replicas
    share a durable, a nak delays one event behind later ones), so a key is changed only by an
    event newer than the one it reflects, and a removal stays as a tombstone (`present` false)
    with its time: a late add older than the removal then changes nothing."""

    present: bool = True
    # a Column object cannot be shared by four tables: the type is given, each table builds its own
    changed_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)


class ChannelReplica(SQLModel, table=True):
    """`channel.created` / `channel.updated`: who owns the room."""

    __tablename__ = "chat_channels"

    id: str = Field(primary_key=True)
    owner_id: str = Field(index=True)
    slug: str
    # time of the event this row reflects: an older event arriving late changes nothing
    synced_at: datetime = Field(sa_column=_time())


class FiltersReplica(SQLModel, table=True):
    """`channel.filters_updated`; a channel without a row has no filters."""

    __tablename__ = "chat_filters"

    channel_id: str = Field(primary_key=True)
    banned_words: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    profanity_filter: bool = False
    slow_mode_seconds: int = 0
    followers_only: bool = False
    subscribers_only: bool = False
    synced_at: datetime = Field(sa_column=_time())


class ModeratorReplica(Membership, table=True):
    """`channel.moderator_added` / `channel.moderator_removed`."""

    __tablename__ = "chat_moderators"

    channel_id: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)


class BanReplica(Membership, table=True):
    """`channel.user_banned` / `channel.user_unbanned`; `until` null is a permanent ban."""

    __tablename__ = "chat_bans"

    channel_id: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)
    until: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    reason: str | None = None


class FollowReplica(Membership, table=True):
    """`channel.followed` / `channel.unfollowed` (followers-only mode)."""

    __tablename__ = "chat_follows"

    channel_id: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)


class SubscriptionReplica(Membership, table=True):
    """`subscription.*` (badges with the tier, subscribers-only mode): present while the user is a
    subscriber; `until` is the renewal date of a CANCELLED subscription (null while ACTIVE, which
    renews), after which it no longer counts even before `subscription.expired` arrives."""

    __tablename__ = "chat_subscriptions"

    channel_id: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)
    tier: str
    until: datetime | None = Field(default=None, sa_column=_time(nullable=True))


class UserReplica(SQLModel, table=True):
    """`user.registered` / `user.updated`: the name shown beside a user's messages."""

    __tablename__ = "chat_users"

    id: str = Field(primary_key=True)
    username: str
    display_name: str
    synced_at: datetime = Field(sa_column=_time())


class BlockReplica(Membership, table=True):
    """`user.blocked` / `user.unblocked`: whose messages a viewer does not want to see."""

    __tablename__ = "chat_blocks"

    blocker_id: str = Field(primary_key=True)
    blocked_id: str = Field(primary_key=True)


class StreamReplica(SQLModel, table=True):
    """`stream.*`: which stream a channel is live with (messages carry it), stream -> channel, and
    when it started (replay offsets)."""

    __tablename__ = "chat_streams"
    __table_args__ = (Index("ix_chat_streams_channel_status", "channel_id", "status"),)

    id: str = Field(primary_key=True)
    channel_id: str
    status: str
    # the stream's startTime (when it went LIVE): chat replay's offsetSeconds count from it
    started_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    synced_at: datetime = Field(sa_column=_time())
