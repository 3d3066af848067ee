"""FastAPI dependencies every service's `deps.py` builds on (the runtime, a database session,
the settings). A service adds its own typed alias: `SettingsDep = Annotated[Settings,
Depends(get_settings)]`."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.app import ServiceRuntime


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db = get_runtime(request).db
    if db is None:
        # a route of a service built with uses_db=False, or a request before the runtime started
        raise RuntimeError("this runtime has no database")
    async with db.session() as session:
        yield session


def get_settings(request: Request):
    return get_runtime(request).settings


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
