"""Every error a service returns is RFC 9457 problem+json."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel, Field
from servicekit.problems import Problem, install_problem_handlers, not_found

PROBLEM_JSON = "application/problem+json"


class NewThing(BaseModel):
    name: str = Field(min_length=3)
    size: int


@pytest.fixture
async def client():
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/conflict")
    async def conflict():
        raise Problem(409, "That username is taken.", headers={"Retry-After": "7"},
                      errors=[{"field": "username", "message": "taken"}], type_="https://errors.test/taken")

    @app.get("/missing")
    async def missing():
        raise not_found("The channel")

    @app.get("/things/{thing_id}")
    async def get_thing(thing_id: int, limit: int = 10):
        return {"id": thing_id, "limit": limit}

    @app.post("/things", status_code=201)
    async def create_thing(thing: NewThing):
        return thing

    @app.get("/boom")
    async def boom():
        raise RuntimeError("password=hunter2 in /srv/app/secret_module.py")

    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://problems.test") as c:
        yield c


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert body["type"]
    return body


async def test_problem_exception_becomes_problem_json_with_headers(client):
    r = await client.get("/conflict")
    body = assert_problem(r, 409)
    assert body == {"type": "https://errors.test/taken", "title": "Conflict", "status": 409,
                    "detail": "That username is taken.",
                    "errors": [{"field": "username", "message": "taken"}]}
    assert r.headers["retry-after"] == "7"


async def test_not_found_helper(client):
    body = assert_problem(await client.get("/missing"), 404)
    assert body["detail"] == "The channel was not found."
    assert "errors" not in body


async def test_unknown_route_is_404_problem(client):
    body = assert_problem(await client.get("/no/such/route"), 404)
    assert body["title"] == "Not Found"


async def test_wrong_method_is_405_problem_with_allow(client):
    r = await client.delete("/conflict")
    body = assert_problem(r, 405)
    assert body["title"] == "Method Not Allowed"
    assert "GET" in r.headers["allow"]


async def test_body_validation_is_422_with_field_errors(client):
    r = await client.post("/things", json={"name": "x", "size": "big"})
    body = assert_problem(r, 422)
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"name", "size"}
    for error in body["errors"]:
        assert error["message"] and error["type"]


async def test_missing_body_field_and_bad_query_and_path_are_422(client):
    body = assert_problem(await client.post("/things", json={"name": "abcd"}), 422)
    assert [e["field"] for e in body["errors"]] == ["size"]
    body = assert_problem(await client.get("/things/12?limit=lots"), 422)
    assert [e["field"] for e in body["errors"]] == ["limit"]
    body = assert_problem(await client.get("/things/twelve"), 422)
    assert [e["field"] for e in body["errors"]] == ["thing_id"]


async def test_valid_requests_still_work(client):
    assert (await client.post("/things", json={"name": "abcd", "size": 3})).status_code == 201
    assert (await client.get("/things/3?limit=4")).json() == {"id": 3, "limit": 4}


async def test_unexpected_exception_is_500_problem_without_internals(client, caplog):
    with caplog.at_level("ERROR", logger="servicekit.problems"):
        r = await client.get("/boom")
    body = assert_problem(r, 500)
    assert body["title"] == "Internal Server Error"
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret_module", "/srv/app"):
        assert leak not in r.text
    # the details go to the log instead
    assert any(rec.exc_info and "hunter2" in str(rec.exc_info[1]) for rec in caplog.records)
