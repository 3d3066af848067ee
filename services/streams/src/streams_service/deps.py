"""Short dependency aliases for the views."""

from typing import Annotated

from fastapi import Depends
from servicekit.deps import Runtime, SessionDep, get_runtime, get_session, get_settings  # noqa: F401  (re-exported for views)
from servicekit.security import CurrentUser, MaybeUser  # noqa: F401  (re-exported for views)

from streams_service.config import Settings

SettingsDep = Annotated[Settings, Depends(get_settings)]
