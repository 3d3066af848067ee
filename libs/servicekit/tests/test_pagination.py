"""Opaque cursors and clamped limits (API.md)."""

from __future__ import annotations

import base64

import orjson
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from servicekit.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Limit,
    Page,
    clamp_limit,
    decode_cursor,
    encode_cursor,
)
from servicekit.problems import Problem, install_problem_handlers


@pytest.mark.parametrize("given,expected", [
    (None, DEFAULT_LIMIT), (1, 1), (20, 20), (MAX_LIMIT, MAX_LIMIT), (MAX_LIMIT + 1, MAX_LIMIT),
    (1_000_000, MAX_LIMIT), (0, 1), (-5, 1),
])
def test_clamp_limit(given, expected):
    assert clamp_limit(given) == expected


@pytest.mark.parametrize("values", [
    {"createdAt": "2025-03-14T15:09:26.535Z", "id": "0b6f1f52-5a8a-4bb4-a3c5-1f0d2b1c6c11"},
    {"seq": 7},
    {"name": "üñí©ødé ✓", "n": None, "nested": [1, 2, {"a": True}]},
    {},
])
def test_cursor_round_trip(values):
    cursor = encode_cursor(values)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # safe in a query string
    assert decode_cursor(cursor) == values


def test_no_cursor_means_first_page():
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize("cursor", [
    "!!!not base64!!!",
    base64.urlsafe_b64encode(b"not json").decode(),
    base64.urlsafe_b64encode(orjson.dumps([1, 2, 3])).decode(),  # json, but not an object
    base64.urlsafe_b64encode(orjson.dumps("a string")).decode(),
    "eyJzZXEiOj",  # a cut-off cursor
])
def test_bad_cursor_is_a_400_problem(cursor):
    with pytest.raises(Problem) as info:
        decode_cursor(cursor)
    assert info.value.status == 400


async def test_page_shape_and_limit_query_over_http():
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/items")
    async def items(limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> Page[int]:
        start = (decode_cursor(cursor) or {}).get("after", 0)
        n = clamp_limit(limit)
        page = list(range(start, min(start + n, 250)))
        nxt = encode_cursor({"after": start + n}) if start + n < 250 else None
        return Page[int](items=page, next_cursor=nxt)

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        first = (await client.get("/items", params={"limit": 5000})).json()
        assert set(first) == {"items", "nextCursor"}
        assert len(first["items"]) == MAX_LIMIT  # larger is clamped, not refused
        seen = list(first["items"])
        cursor = first["nextCursor"]
        while cursor:
            page = (await client.get("/items", params={"limit": 5000, "cursor": cursor})).json()
            seen += page["items"]
            cursor = page["nextCursor"]
        assert seen == list(range(250))

        assert (await client.get("/items", params={"limit": 0})).status_code == 422
        bad = await client.get("/items", params={"cursor": "garbage!"})
        assert bad.status_code == 400
        assert bad.headers["content-type"] == "application/problem+json"
