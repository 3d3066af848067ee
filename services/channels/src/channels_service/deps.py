"""Short dependency aliases for the views."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.app import ServiceRuntime
from servicekit.problems import Problem
from servicekit.security import CurrentUser, MaybeUser, Principal  # noqa: F401  (re-exported for views)

from channels_service.config import Settings


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.session() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return get_runtime(request).settings


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


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerId = Annotated[uuid.UUID, Depends(caller_id)]
MaybeCallerId = Annotated[uuid.UUID | None, Depends(maybe_caller_id)]
