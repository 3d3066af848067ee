import uuid
from datetime import datetime

from pydantic import Field as PydField
from sqlalchemy import CheckConstraint, Column, DateTime, Index, UniqueConstraint, func
from sqlmodel import Field, SQLModel

from contracts.events.subscriptions import SubscriptionStatus, SubscriptionTier

from channels_service.schemas import ApiModel, UserSummary, UtcDateTime

TIERS = tuple(t.value for t in SubscriptionTier)
STATUSES = tuple(s.value for s in SubscriptionStatus)


class Subscription(SQLModel, table=True):
    """One user's subscription to one channel (at most one row per pair, kept across cancelling,
    expiry and subscribing again). `renewal_date` is when an ACTIVE one renews and a CANCELLED one
    ends; the renewal job (subscriptions.renewals) moves it on or expires the row."""

    __tablename__ = "channel_subscriptions"
    __table_args__ = (
        UniqueConstraint("user_id", "channel_id", name="uq_channel_subscriptions_user_channel"),
        CheckConstraint(f"tier IN {TIERS}", name="ck_channel_subscriptions_tier"),
        CheckConstraint(f"status IN {STATUSES}", name="ck_channel_subscriptions_status"),
        # the owner's list (current subscribers, newest first) and the renewal job's scan
        Index("ix_channel_subscriptions_channel", "channel_id", "status", "created_at", "id"),
        Index("ix_channel_subscriptions_due", "status", "renewal_date"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID
    channel_id: uuid.UUID = Field(foreign_key="channels.id", ondelete="CASCADE")
    tier: str
    status: str
    renewal_date: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now(), onupdate=func.now()))


# ---- API models (Base / Create / Public) -----------------------------------------------------
# No Update model: POST both creates and changes (API.md), with the Create body.

class SubscriptionBase(ApiModel):
    tier: SubscriptionTier = PydField(description="BASIC, PREMIUM or VIP.")


class SubscriptionCreate(SubscriptionBase):
    """POST body: subscribe at this tier, or change an existing subscription to it."""


class SubscriptionPublic(SubscriptionBase):
    id: str
    channel_id: str
    user_id: str
    status: SubscriptionStatus = PydField(description=(
        "ACTIVE (renews at renewalDate), CANCELLED (valid until renewalDate, then EXPIRED) or EXPIRED."))
    renewal_date: UtcDateTime = PydField(description=(
        "When an ACTIVE subscription renews and a CANCELLED one ends."))
    created_at: UtcDateTime
    updated_at: UtcDateTime


class Subscriber(ApiModel):
    """One current subscriber, as the channel's owner sees them."""

    user: UserSummary
    tier: SubscriptionTier
    status: SubscriptionStatus = PydField(description="ACTIVE, or CANCELLED and valid until renewalDate.")
    renewal_date: UtcDateTime
    created_at: UtcDateTime


class SubscriberPage(ApiModel):
    """A page of the channel's current subscribers, newest first, with their number."""

    items: list[Subscriber]
    next_cursor: str | None = None
    count: int = PydField(description="Current subscribers of the channel (all pages).")
