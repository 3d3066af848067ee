"""The building blocks every service's request and response models share.

One copy, so that a rule about the wire (camelCase, which characters text may hold) changes in one
place for every API.
"""

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """camelCase on the wire (API.md), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def no_control_chars(value: str) -> str:
    # PostgreSQL cannot even store or compare a text holding NUL (it would answer 500); newlines
    # and tabs stay allowed in multi-line fields
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def single_line(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be one line without control characters")
    return value

