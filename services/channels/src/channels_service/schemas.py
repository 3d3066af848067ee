"""Shared building blocks of the channels API's request and response models."""

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from contracts.base import UtcDateTime  # noqa: F401  (re-exported: times leave as ISO 8601 with Z)
from servicekit.schemas import ApiModel, no_control_chars, single_line  # noqa: F401  (re-exported)


def _not_a_uuid(value: str) -> str:
    # GET /api/channels/{slugOrId} resolves both: a slug that reads as an id would be ambiguous
    try:
        uuid.UUID(value)
    except ValueError:
        return value
    raise ValueError("must not look like an id")


SLUG_RE = r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$"
CATEGORY_RE = r"^[a-z0-9][a-z0-9-]*$"
# `?owner=`: a user id, or `me` (the caller)
OWNER_RE = r"^(me|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
# PostgreSQL refuses NUL in text (it would answer 500): free-text query parameters exclude controls
NO_CONTROL_RE = r"^[^\x00-\x1f\x7f]*$"
Slug = Annotated[str, StringConstraints(min_length=3, max_length=40, pattern=SLUG_RE),
                 AfterValidator(_not_a_uuid)]
ChannelName = Annotated[str, StringConstraints(min_length=1, max_length=80, strip_whitespace=True),
                        AfterValidator(single_line)]
Description = Annotated[str, StringConstraints(max_length=2000), AfterValidator(no_control_chars)]
Category = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=CATEGORY_RE)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=25, strip_whitespace=True),
                AfterValidator(single_line)]
BannedWord = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True),
                       AfterValidator(single_line)]
Reason = Annotated[str, StringConstraints(max_length=500, strip_whitespace=True),
                   AfterValidator(no_control_chars)]


def dedupe(values: list[str], *, fold_case: bool = True) -> list[str]:
    """Keep the first of values that are equal (case-insensitively by default), in order."""
    seen: set[str] = set()
    out = []
    for v in values:
        k = v.casefold() if fold_case else v
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def escape_like(value: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", value)


def parse_uuid(raw: str | uuid.UUID | None) -> uuid.UUID | None:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw) if raw else None
    except (ValueError, TypeError, AttributeError):
        return None


class UserSummary(ApiModel):
    """A user as the channels service knows them (from `user.*` events); null fields until the
    first event about them has arrived."""

    id: str
    username: str | None = None
    display_name: str | None = None
    avatar: str | None = None
