"""The payment-provider hook: every change of a subscription is asked of it before it is stored.

The platform takes no payments yet (API.md Extensions: "framework, no payments yet"), so the
default `NoPayments` allows everything. A real provider implements `PaymentProvider` and is handed
to `channels_service.main.create_app(payment_provider=...)`; `build_runtime` keeps it as
`runtime.payment_provider`, which the views reach through `deps.PaymentProviderDep` and the
renewal job through the runtime. How a Stripe implementation would plug in:
services/channels/README.md, "Subscriptions".

Contract:
- `authorize(change)` answers `Authorization(ok=True)` to let the change be stored, or
  `Authorization(ok=False, reason=...)` to refuse it: nothing is stored and the caller gets 402
  (`reason` is the problem's detail, so it must be fit for the subscriber to read).
- It raises `PaymentProviderUnavailable` when it cannot decide now (provider unreachable): 503,
  nothing stored; the renewal job tries again on its next run.
- It is called inside the open database transaction, holding the subscription's row lock, so two
  changes of one subscription are asked one after the other; it should answer within seconds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from contracts.events.subscriptions import SubscriptionTier

Action = Literal["create", "change", "resume", "cancel", "renew"]
"""create: a new subscription (or again after the last expired); change: another tier; resume:
subscribing again before a cancelled subscription ran out; cancel: stop renewing; renew: the
renewal job extends an ACTIVE subscription by one period at its renewal date."""


@dataclass(frozen=True)
class SubscriptionChange:
    """What is about to be stored."""

    action: Action
    subscription_id: uuid.UUID
    user_id: uuid.UUID
    channel_id: uuid.UUID
    tier: SubscriptionTier
    """The tier after the change."""
    previous_tier: SubscriptionTier | None
    """The tier before it (None for create)."""
    renewal_date: datetime
    """The renewal date after the change (the end of the paid period for cancel)."""


@dataclass(frozen=True)
class Authorization:
    ok: bool
    reason: str | None = None
    """Why it was refused, for the subscriber (the 402 problem's detail)."""


class PaymentProviderUnavailable(Exception):
    """The provider could not be asked now; nothing is stored (503 / retried by the renewal job)."""


@runtime_checkable
class PaymentProvider(Protocol):
    name: str

    async def authorize(self, change: SubscriptionChange) -> Authorization: ...


class NoPayments:
    """The default: no payment provider, every change is allowed (subscriptions as a framework)."""

    name = "none"

    async def authorize(self, change: SubscriptionChange) -> Authorization:
        return Authorization(ok=True)
