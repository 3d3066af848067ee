import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime, Index, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from auth_service.schemas import ApiModel, Bio, DisplayName, Email, Language, Password, SocialLinks, Username


class Theme(StrEnum):
    dark = "dark"
    light = "light"
    system = "system"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", text("lower(email)"), unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str
    username: str = Field(unique=True)
    password_hash: str
    display_name: str
    avatar: str | None = None
    bio: str = ""
    onboarded: bool = False
    social_links: dict = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False,
                                                                      server_default=text("'{}'")))
    theme: str = Theme.dark.value
    language: str = "en"
    notification_email: str | None = None  # an address (API.md); null: no notification e-mail
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  server_default=func.now(), onupdate=func.now()))


# ---- API models (Base / Create / Update / Public) -------------------------------------------

class UserCreate(ApiModel):
    email: Email
    password: Password
    username: Username
    display_name: DisplayName | None = None


class Onboard(ApiModel):
    display_name: DisplayName
    bio: Bio | None = None
    social_links: SocialLinks | None = None


class ProfileUpdate(ApiModel):
    display_name: DisplayName | None = None
    bio: Bio | None = None
    social_links: SocialLinks | None = None
    theme: Theme | None = None
    language: Language | None = None
    # null clears it; absent leaves it as it is
    notification_email: Email | None = None


class UserPublic(ApiModel):
    id: str
    username: str
    display_name: str
    avatar: str | None
    bio: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> "UserPublic":
        return cls(id=str(user.id), username=user.username, display_name=user.display_name,
                   avatar=user.avatar, bio=user.bio, created_at=user.created_at)


class UserProfilePublic(UserPublic):
    """GET /api/users/{id}: the public profile with its links and follow counts."""

    social_links: dict[str, str]
    follower_count: int
    following_count: int
    # whether the caller follows this user; null when signed out
    is_following: bool | None = None

    @classmethod
    def with_counts(cls, user: User, followers: int, following: int,
                    is_following: bool | None) -> "UserProfilePublic":
        return cls(**UserPublic.of(user).model_dump(), social_links=user.social_links, follower_count=followers,
                   following_count=following, is_following=is_following)


class Profile(ApiModel):
    social_links: dict[str, str]
    theme: Theme
    language: str
    notification_email: str | None


class UserMe(UserPublic):
    email: str
    onboarded: bool
    profile: Profile

    @classmethod
    def of(cls, user: User) -> "UserMe":
        return cls(**UserPublic.of(user).model_dump(), email=user.email, onboarded=user.onboarded,
                   profile=Profile(social_links=user.social_links, theme=Theme(user.theme),
                                   language=user.language, notification_email=user.notification_email))
