"""Short dependency aliases for the views."""

from typing import Annotated

from fastapi import Depends, Request
from servicekit.deps import Runtime, SessionDep, get_runtime, get_session, get_settings  # noqa: F401  (re-exported for views)
from servicekit.ratelimit import RateLimiter
from servicekit.security import CurrentUser, MaybeUser  # noqa: F401  (re-exported for views)

from auth_service.config import Settings
from auth_service.passwords import Passwords


def get_passwords(request: Request) -> Passwords:
    return request.app.state.passwords


def get_limiter(request: Request) -> RateLimiter:
    return RateLimiter(get_runtime(request).redis, prefix="auth")


def client_ip(request: Request) -> str:
    # uvicorn already replaced the peer with X-Forwarded-For from the trusted gateway
    return request.client.host if request.client else "unknown"


SettingsDep = Annotated[Settings, Depends(get_settings)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
ClientIp = Annotated[str, Depends(client_ip)]
