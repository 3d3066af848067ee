"""Short dependency aliases for the views."""

import uuid
from typing import Annotated

from fastapi import Depends, Request
from servicekit.deps import Runtime, SessionDep, get_runtime, get_session, get_settings  # noqa: F401  (re-exported for views)
from servicekit.problems import Problem
from servicekit.security import CurrentUser, MaybeUser, Principal  # noqa: F401  (re-exported for views)

from channels_service.config import Settings
from channels_service.subscriptions.payments import PaymentProvider


def user_id_of(principal: Principal) -> uuid.UUID:
    """The caller's user id; auth issues UUIDs, so any other `sub` is not one of our tokens."""
    try:
        return uuid.UUID(principal.id)
    except ValueError:
        raise Problem(401, "The access token is invalid or expired.",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


def caller_id(caller: CurrentUser) -> uuid.UUID:
    return user_id_of(caller)


def maybe_caller_id(caller: MaybeUser) -> uuid.UUID | None:
    return user_id_of(caller) if caller is not None else None


def payment_provider(request: Request) -> PaymentProvider:
    """The subscriptions' payment-provider hook (main.build_runtime; NoPayments by default)."""
    return request.app.state.runtime.payment_provider


SettingsDep = Annotated[Settings, Depends(get_settings)]
PaymentProviderDep = Annotated[PaymentProvider, Depends(payment_provider)]
CallerId = Annotated[uuid.UUID, Depends(caller_id)]
MaybeCallerId = Annotated[uuid.UUID | None, Depends(maybe_caller_id)]
