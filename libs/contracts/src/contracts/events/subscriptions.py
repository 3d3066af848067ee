"""Payloads of channel subscriptions (published by the channels service, which owns them).

A subscription is one user's paid support of one channel at a tier (API.md Extensions,
"Subscriptions"). Every event carries the whole subscription after the change, so a consumer
(chat's subscriber badges and subscribers-only mode) needs no other source.
"""

from enum import StrEnum

from contracts.base import Id, UtcDateTime, WireModel


class SubscriptionTier(StrEnum):
    """What the subscriber pays for, lowest first."""

    BASIC = "BASIC"
    PREMIUM = "PREMIUM"
    VIP = "VIP"


class SubscriptionStatus(StrEnum):
    """ACTIVE renews at ``renewalDate``; CANCELLED stays valid until ``renewalDate`` and does not
    renew; EXPIRED is over (a cancelled one past its date, or a renewal the payment provider
    refused)."""

    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class Subscription(WireModel):
    """A subscription after the change (``subscription.created``, ``subscription.cancelled``,
    ``subscription.expired``)."""

    id: Id
    """The subscription's id (one per user and channel, kept across renewals and re-subscribing)."""
    channel_id: Id
    """The channel subscribed to."""
    user_id: Id
    """The subscriber."""
    tier: SubscriptionTier
    """The tier now."""
    status: SubscriptionStatus
    """The status now."""
    renewal_date: UtcDateTime
    """When an ACTIVE subscription renews and a CANCELLED one ends: the subscriber keeps its
    benefits until then either way."""


class SubscriptionChanged(Subscription):
    """A subscription changed tier, was resumed before it ran out, or renewed for another period
    (``subscription.changed``)."""

    previous_tier: SubscriptionTier
    """The tier before the change (equal to ``tier`` when only the status or date changed)."""
    previous_status: SubscriptionStatus
    """The status before the change (CANCELLED when the subscriber resumed it)."""
