"""Short dependency aliases for the views."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from servicekit.security import CurrentUser, MaybeUser  # noqa: F401  (re-exported for views)
from sqlmodel.ext.asyncio.session import AsyncSession

from chat_service.config import Settings
from chat_service.messages.service import ChatService


def get_runtime(request: Request):
    return request.app.state.runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.session() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return get_runtime(request).settings


def get_chat(request: Request) -> ChatService:
    return get_runtime(request).chat


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
