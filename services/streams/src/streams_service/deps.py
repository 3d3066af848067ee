"""Short dependency aliases for the views."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.app import ServiceRuntime
from servicekit.security import CurrentUser, MaybeUser  # noqa: F401  (re-exported for views)

from streams_service.config import Settings


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.session() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return get_runtime(request).settings


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
