"""Shared building blocks of the streams API's request and response models."""

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from contracts.base import UtcDateTime  # noqa: F401  (re-exported: times leave as ISO 8601 with Z)
from servicekit.schemas import ApiModel, no_control_chars, single_line  # noqa: F401  (re-exported)


Title = Annotated[str, StringConstraints(min_length=1, max_length=140, strip_whitespace=True),
                  AfterValidator(single_line)]
Description = Annotated[str, StringConstraints(max_length=2000), AfterValidator(no_control_chars)]


def clean_id(raw: str) -> str | None:
    """An opaque id from a path or an event, or None when it cannot be one of ours (too long, or
    holding characters PostgreSQL refuses): callers answer 404 instead of failing on it."""
    if not raw or len(raw) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        return None
    return raw
