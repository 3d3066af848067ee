"""Shared building blocks of the auth API's request and response models."""

from typing import Annotated

from pydantic import AfterValidator, Field, HttpUrl, StringConstraints
from servicekit.schemas import ApiModel, no_control_chars  # noqa: F401  (re-exported)


Username = Annotated[str, StringConstraints(min_length=3, max_length=25, pattern=r"^[a-z0-9_]+$")]
# no control characters: PostgreSQL cannot even compare a text containing NUL (it answered 500)
_EMAIL_CHARS = r"[^@\s\x00-\x1f\x7f]+"
Email = Annotated[str, StringConstraints(min_length=3, max_length=254, strip_whitespace=True,
                                         pattern=rf"^{_EMAIL_CHARS}@{_EMAIL_CHARS}\.{_EMAIL_CHARS}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True),
                        AfterValidator(no_control_chars)]
Bio = Annotated[str, StringConstraints(max_length=500), AfterValidator(no_control_chars)]
LinkName = Annotated[str, StringConstraints(min_length=1, max_length=30, pattern=r"^[A-Za-z0-9_.-]+$")]
SocialLinks = Annotated[dict[LinkName, HttpUrl], Field(max_length=10)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$")]
