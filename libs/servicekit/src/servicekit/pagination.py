"""`{"items": [...], "nextCursor": ...}` lists with opaque cursors and clamped limits (API.md)."""

from __future__ import annotations

import base64
from typing import Annotated, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from servicekit.problems import Problem

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    items: list[T]
    next_cursor: str | None = None


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(int(limit), MAX_LIMIT))


# larger is clamped, not refused (API.md); zero and negatives are still nonsense -> 422
Limit = Annotated[int, Query(ge=1, le=1_000_000, description="Page size (max 100; larger is clamped)")]


def encode_cursor(values: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except Exception:
        raise Problem(400, "The cursor is not valid; start again without it.") from None
    if not isinstance(value, dict):
        raise Problem(400, "The cursor is not valid; start again without it.")
    return value
