"""Subscriptions (API.md Extensions): one per user and channel, tiers BASIC/PREMIUM/VIP.

- Subscribing (POST) creates an ACTIVE subscription renewing in `SUBSCRIPTION_PERIOD_DAYS` (30),
  or changes an existing one: another tier keeps the renewal date; subscribing again to a
  cancelled one before its renewal date resumes it (ACTIVE, same date); after it expired it starts
  a new period (`subscription.created` again, same id).
- Cancelling (DELETE) stops the renewal: CANCELLED, still valid until the renewal date, then the
  renewal job (renewals.py) marks it EXPIRED. A cancelled subscription past its date reads as
  EXPIRED even before the job got to it.
- Every change is asked of the payment provider (payments.py) first, inside the transaction and
  under the subscription's lock; a refusal stores nothing (402), as does a provider that cannot
  be reached (503).
- Each change stages its event (`subscription.created|changed|cancelled|expired`) in the outbox
  in the same transaction; asking for what is already so changes nothing and publishes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events import subscriptions as events
from contracts.events.subscriptions import SubscriptionStatus, SubscriptionTier
from servicekit.outbox import stage_event
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem

from channels_service.channels.models import Channel
from channels_service.channels.service import SOURCE
from channels_service.profiles import service as profiles
from channels_service.profiles.models import CachedProfile
from channels_service.subscriptions.models import Subscriber, Subscription, SubscriptionPublic
from channels_service.subscriptions.payments import (Action, PaymentProvider, PaymentProviderUnavailable,
                                                     SubscriptionChange)

ACTIVE, CANCELLED, EXPIRED = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.CANCELLED.value,
                              SubscriptionStatus.EXPIRED.value)
# pg_advisory_xact_lock(int, int) space of (channel, user) pairs: the first subscribe has no row to lock
SUBSCRIPTION_LOCK_SPACE = 0x73756273  # "subs"
PAYMENT_REFUSED = "urn:streamplatform:subscriptions:payment_refused"


def now() -> datetime:
    return datetime.now(UTC)


def effective_status(row: Subscription, at: datetime) -> str:
    """CANCELLED past its renewal date is over, whether or not the renewal job marked it yet."""
    if row.status == CANCELLED and row.renewal_date <= at:
        return EXPIRED
    return row.status


def is_current(row: Subscription, at: datetime) -> bool:
    return effective_status(row, at) in (ACTIVE, CANCELLED)


def to_public(row: Subscription, at: datetime | None = None) -> SubscriptionPublic:
    return SubscriptionPublic(id=str(row.id), channel_id=str(row.channel_id), user_id=str(row.user_id),
                              tier=SubscriptionTier(row.tier), status=SubscriptionStatus(effective_status(row, at or now())),
                              renewal_date=row.renewal_date, created_at=row.created_at, updated_at=row.updated_at)


def payload(row: Subscription, status: str | None = None) -> events.Subscription:
    return events.Subscription(id=str(row.id), channel_id=str(row.channel_id), user_id=str(row.user_id),
                               tier=SubscriptionTier(row.tier), status=SubscriptionStatus(status or row.status),
                               renewal_date=row.renewal_date)


def changed_payload(row: Subscription, previous_tier: str, previous_status: str) -> events.SubscriptionChanged:
    return events.SubscriptionChanged(**payload(row).model_dump(), previous_tier=SubscriptionTier(previous_tier),
                                      previous_status=SubscriptionStatus(previous_status))


async def stage(session: AsyncSession, event_type: str, data) -> None:
    await stage_event(session, event_type, data, source=SOURCE, key=data.channel_id)


async def _locked(session: AsyncSession, channel_id: uuid.UUID, user_id: uuid.UUID) -> Subscription | None:
    await session.exec(text("SELECT pg_advisory_xact_lock(:space, hashtext(:pair))")
                       .bindparams(space=SUBSCRIPTION_LOCK_SPACE, pair=f"{channel_id}:{user_id}"))
    return (await session.exec(select(Subscription).where(
        Subscription.channel_id == channel_id, Subscription.user_id == user_id)
        .with_for_update().execution_options(populate_existing=True))).first()


async def get_for(session: AsyncSession, channel_id: uuid.UUID, user_id: uuid.UUID) -> Subscription | None:
    return (await session.exec(select(Subscription).where(
        Subscription.channel_id == channel_id, Subscription.user_id == user_id))).first()


async def authorize(provider: PaymentProvider, action: Action, row: Subscription, tier: str,
                     previous_tier: str | None, renewal_date: datetime) -> None:
    change = SubscriptionChange(action=action, subscription_id=row.id, user_id=row.user_id,
                                channel_id=row.channel_id, tier=SubscriptionTier(tier),
                                previous_tier=SubscriptionTier(previous_tier) if previous_tier else None,
                                renewal_date=renewal_date)
    try:
        decision = await provider.authorize(change)
    except PaymentProviderUnavailable:
        raise Problem(503, "The payment provider cannot be reached; nothing was changed. Try again later.",
                      headers={"Retry-After": "30"}) from None
    if not decision.ok:
        raise Problem(402, decision.reason or "The payment provider refused this subscription change.",
                      title="Payment Required", type_=PAYMENT_REFUSED)


async def subscribe(session: AsyncSession, provider: PaymentProvider, channel: Channel, user_id: uuid.UUID,
                    tier: SubscriptionTier, period: timedelta) -> tuple[Subscription, bool]:
    """Create or change the caller's subscription; (row, True when a new period began)."""
    if channel.owner_id == user_id:
        raise Problem(422, "You cannot subscribe to your own channel.",
                      errors=[{"field": "channel_id", "message": "is your own channel", "type": "value_error"}])
    at = now()
    row = await _locked(session, channel.id, user_id)
    wanted = tier.value
    if row is None or effective_status(row, at) == EXPIRED:
        renewal = at + period
        if row is None:
            row = Subscription(user_id=user_id, channel_id=channel.id, tier=wanted, status=ACTIVE, renewal_date=renewal)
        await authorize(provider, "create", row, wanted, None, renewal)
        row.tier, row.status, row.renewal_date = wanted, ACTIVE, renewal
        row.created_at = row.created_at or at
        session.add(row)
        await session.flush()
        await session.refresh(row)
        await stage(session, "subscription.created", payload(row))
        return row, True
    previous_tier, previous_status = row.tier, row.status
    if previous_status == ACTIVE and previous_tier == wanted:
        return row, False  # already so: nothing to ask, store or announce
    action: Action = "resume" if previous_status == CANCELLED else "change"
    await authorize(provider, action, row, wanted, previous_tier, row.renewal_date)
    row.tier, row.status = wanted, ACTIVE
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await stage(session, "subscription.changed", changed_payload(row, previous_tier, previous_status))
    return row, False


async def cancel(session: AsyncSession, provider: PaymentProvider, channel: Channel,
                 user_id: uuid.UUID) -> Subscription:
    """Stop the renewal; valid until the renewal date. 404 when there is nothing to cancel."""
    at = now()
    row = await _locked(session, channel.id, user_id)
    if row is None or effective_status(row, at) == EXPIRED:
        raise Problem(404, "You are not subscribed to this channel.")
    if row.status == CANCELLED:
        return row  # already cancelled: nothing changes
    await authorize(provider, "cancel", row, row.tier, row.tier, row.renewal_date)
    row.status = CANCELLED
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await stage(session, "subscription.cancelled", payload(row))
    return row


def _current(at: datetime):
    return or_(col(Subscription.status) == ACTIVE,
               (col(Subscription.status) == CANCELLED) & (col(Subscription.renewal_date) > at))


async def count_current(session: AsyncSession, channel_id: uuid.UUID, at: datetime | None = None) -> int:
    return (await session.exec(select(func.count()).select_from(Subscription).where(
        Subscription.channel_id == channel_id, _current(at or now())))).one()


async def list_current(session: AsyncSession, channel: Channel, limit: int,
                       cursor: str | None) -> tuple[list[Subscriber], str | None, int]:
    """Current subscribers (ACTIVE, or CANCELLED before the renewal date), newest first,
    keyset-paginated on (created_at, id); and how many there are in all."""
    at = now()
    stmt = (select(Subscription, CachedProfile)
            .outerjoin(CachedProfile, col(CachedProfile.user_id) == Subscription.user_id)
            .where(Subscription.channel_id == channel.id, _current(at))
            .order_by(col(Subscription.created_at).desc(), col(Subscription.id).desc()).limit(limit + 1))
    after = decode_cursor(cursor)
    if after:
        try:
            last_at, last_id = datetime.fromisoformat(after["at"]), uuid.UUID(after["id"])
        except (KeyError, ValueError, TypeError):
            raise Problem(400, "The cursor is not valid; start again without it.") from None
        stmt = stmt.where((col(Subscription.created_at) < last_at)
                          | ((col(Subscription.created_at) == last_at) & (col(Subscription.id) < last_id)))
    rows = (await session.exec(stmt)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        next_cursor = encode_cursor({"at": last.created_at.isoformat(), "id": str(last.id)})
    items = [Subscriber(user=profiles.summary(s.user_id, p), tier=SubscriptionTier(s.tier),
                        status=SubscriptionStatus(s.status), renewal_date=s.renewal_date, created_at=s.created_at)
             for s, p in rows]
    return items, next_cursor, await count_current(session, channel.id, at)
