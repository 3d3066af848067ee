from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class SigningKey(SQLModel, table=True):
    """An Ed25519 key pair. It is published in the JWKS from creation, signs from `activates_at`
    (later than creation, so verifiers know it before the first token it signs) until
    `retired_at`, and stays published until every token it signed has expired."""

    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True)
    private_pem: str
    public_jwk: dict = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    activates_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                    server_default=func.now()))
    retired_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
