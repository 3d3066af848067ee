"""The renewal job: at a subscription's renewal date, a CANCELLED one expires and an ACTIVE one is
renewed for another period if the payment provider agrees (the no-op default always does), else it
expires. Runs every `SUBSCRIPTION_RENEWAL_INTERVAL_SECONDS` in every replica of the service: each
subscription is claimed with FOR UPDATE SKIP LOCKED in its own transaction, so replicas share
the work and none handles a subscription twice. A provider that cannot be reached leaves the
subscription as it is until the next run (chat keeps an ACTIVE subscriber's badge meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlmodel import col, select

from servicekit.db import Database
from servicekit.periodic import every
from servicekit.problems import Problem

from channels_service.subscriptions import service
from channels_service.subscriptions.models import Subscription
from channels_service.subscriptions.payments import PaymentProvider

log = logging.getLogger("channels.subscriptions")


async def _due(db: Database, status: str, at: datetime, limit: int) -> list:
    async with db.session() as session:
        return list((await session.exec(select(Subscription.id).where(
            Subscription.status == status, col(Subscription.renewal_date) <= at)
            .order_by(col(Subscription.renewal_date)).limit(limit))).all())


async def _claim(session, subscription_id, status: str, at: datetime) -> Subscription | None:
    return (await session.exec(select(Subscription).where(
        Subscription.id == subscription_id, Subscription.status == status, col(Subscription.renewal_date) <= at)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True))).first()


async def _expire(session, row: Subscription) -> None:
    row.status = service.EXPIRED
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await service.stage(session, "subscription.expired", service.payload(row))


async def run_due(db: Database, provider: PaymentProvider, period: timedelta, *, at: datetime | None = None,
                  batch: int = 500) -> dict[str, int]:
    """One pass; counts of what it did."""
    at = at or service.now()
    done = {"expired": 0, "renewed": 0, "deferred": 0}
    for subscription_id in await _due(db, service.CANCELLED, at, batch):
        async with db.session() as session:
            row = await _claim(session, subscription_id, service.CANCELLED, at)
            if row is not None:
                await _expire(session, row)
                done["expired"] += 1
            await session.commit()
    for subscription_id in await _due(db, service.ACTIVE, at, batch):
        async with db.session() as session:
            row = await _claim(session, subscription_id, service.ACTIVE, at)
            if row is None:
                await session.commit()
                continue
            renewal = row.renewal_date
            while renewal <= at:  # a service that was down for several periods renews once, to a future date
                renewal += period
            try:
                await service.authorize(provider, "renew", row, row.tier, row.tier, renewal)
            except Problem as refused:
                if refused.status != 402:
                    done["deferred"] += 1
                    await session.rollback()
                    continue
                log.info("renewal refused by the payment provider; expired",
                         extra={"subscriptionId": str(row.id), "reason": refused.detail})
                await _expire(session, row)
                done["expired"] += 1
            else:
                previous = row.status
                row.renewal_date = renewal
                session.add(row)
                await session.flush()
                await session.refresh(row)
                await service.stage(session, "subscription.changed", service.changed_payload(row, row.tier, previous))
                done["renewed"] += 1
            await session.commit()
    return done


class Renewals:
    """Runs `run_due` every `interval` seconds for the life of the process."""

    __name__ = "channels-subscription-renewals"

    def __init__(self, interval: float, period: timedelta):
        self.interval = interval
        self.period = period
        self._stop = asyncio.Event()

    async def __call__(self, runtime) -> None:
        async def renew() -> None:
            done = await run_due(runtime.db, runtime.payment_provider, self.period)
            if any(done.values()):
                log.info("subscriptions renewed or expired", extra=done)

        await every(self.interval, renew, self._stop, log=log, failed="subscription renewal pass failed")

    def stop(self) -> None:
        self._stop.set()
