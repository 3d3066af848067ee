"""Short dependency aliases for the views."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.app import ServiceRuntime
from servicekit.ratelimit import RateLimiter
from servicekit.security import CurrentUser, MaybeUser  # noqa: F401  (re-exported for views)

from auth_service.config import Settings
from auth_service.passwords import Passwords


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.session() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return get_runtime(request).settings


def get_passwords(request: Request) -> Passwords:
    return request.app.state.passwords


def get_limiter(request: Request) -> RateLimiter:
    return RateLimiter(get_runtime(request).redis, prefix="auth")


def client_ip(request: Request) -> str:
    # uvicorn already replaced the peer with X-Forwarded-For from the trusted gateway
    return request.client.host if request.client else "unknown"


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
ClientIp = Annotated[str, Depends(client_ip)]
