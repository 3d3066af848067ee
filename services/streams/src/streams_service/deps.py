"""Short dependency aliases for the views."""

from typing import Annotated

from fastapi import Depends
from servicekit.deps import Runtime, SessionDep, get_runtime, get_session, get_settings  # noqa: F401  (re-exported for views)
from servicekit.ratelimit import RateLimiter
from servicekit.security import CurrentUser, MaybeUser  # noqa: F401  (re-exported for views)

from streams_service.channels.service import ChannelLookup
from streams_service.config import Settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_channel_lookup(runtime: Runtime) -> ChannelLookup:
    return ChannelLookup(runtime.nats, runtime.settings.channel_lookup_timeout_seconds)


ChannelLookupDep = Annotated[ChannelLookup, Depends(get_channel_lookup)]


def get_limiter(runtime: Runtime) -> RateLimiter:
    return RateLimiter(runtime.redis, prefix="streams")


LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
