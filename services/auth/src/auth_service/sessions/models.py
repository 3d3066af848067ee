import uuid
from datetime import datetime

from pydantic import Field as PydField
from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel

from auth_service.schemas import ApiModel
from auth_service.users.models import UserMe


class RefreshToken(SQLModel, table=True):
    """One refresh token; rotation chains tokens into a family. Only a hash is stored."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(unique=True)
    family_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class Login(ApiModel):
    # NUL never matches an account, and PostgreSQL refuses it in a query (it answered 500)
    login: str = PydField(min_length=1, max_length=254, pattern=r"^[^\x00]+$",
                          description="email or username")
    password: str = PydField(min_length=1, max_length=128)


class RefreshRequest(ApiModel):
    refresh_token: str = PydField(min_length=1, max_length=200)


class TokenPair(ApiModel):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class AuthResult(TokenPair):
    user: UserMe
