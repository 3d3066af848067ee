"""Shared building blocks of the streams API's request and response models."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

from contracts.base import UtcDateTime  # noqa: F401  (re-exported: times leave as ISO 8601 with Z)


class ApiModel(BaseModel):
    """camelCase on the wire (API.md), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def _no_control_chars(value: str) -> str:
    # PostgreSQL cannot even store a NUL in text (it would answer 500)
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _single_line(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be one line without control characters")
    return value


Title = Annotated[str, StringConstraints(min_length=1, max_length=140, strip_whitespace=True),
                  AfterValidator(_single_line)]
Description = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_control_chars)]


def clean_id(raw: str) -> str | None:
    """An opaque id from a path or an event, or None when it cannot be one of ours (too long, or
    holding characters PostgreSQL refuses): callers answer 404 instead of failing on it."""
    if not raw or len(raw) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        return None
    return raw
