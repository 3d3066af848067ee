import uuid
from datetime import datetime

from pydantic import Field as PydField
from sqlalchemy import Column, DateTime, UniqueConstraint, func
from sqlmodel import Field, SQLModel

from auth_service.schemas import ApiModel


class OidcIdentity(SQLModel, table=True):
    """A platform user's account at an external provider: (provider, subject) signs in as user_id."""

    __tablename__ = "oidc_identities"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_oidc_identities_provider_subject"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    provider: str
    subject: str  # the provider's `sub`, stable for the account there
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    email: str | None = None  # as the provider last reported it
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))


class ProviderOut(ApiModel):
    name: str
    display_name: str
    login_url: str


class ProviderList(ApiModel):
    providers: list[ProviderOut]


class ExchangeRequest(ApiModel):
    id_token: str = PydField(min_length=1, max_length=16384)


class HandoffRequest(ApiModel):
    code: str = PydField(min_length=1, max_length=200)


class LinkRequest(ApiModel):
    link_token: str = PydField(min_length=1, max_length=200)


class IdentityOut(ApiModel):
    provider: str
    email: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: OidcIdentity) -> "IdentityOut":
        return cls(provider=row.provider, email=row.email, created_at=row.created_at)


class WebhookResult(ApiModel):
    type: str
    applied: bool
