"""Short dependency aliases for the views."""

from typing import Annotated

from fastapi import Depends, Request
from servicekit.deps import Runtime, SessionDep, get_runtime, get_session, get_settings  # noqa: F401  (re-exported for views)
from servicekit.security import CurrentUser, MaybeUser  # noqa: F401  (re-exported for views)

from chat_service.config import Settings
from chat_service.messages.service import ChatService


def get_chat(request: Request) -> ChatService:
    return get_runtime(request).chat


SettingsDep = Annotated[Settings, Depends(get_settings)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
