"""The committed OpenAPI documents (services/<name>/openapi.json): up to date with the code, no
breaking change against them, and the breaking-change rules themselves."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import openapi
from devstack.stack import SERVICES


@pytest.fixture(scope="module")
def documents():
    return openapi.build_documents()


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_the_committed_document_is_up_to_date(documents, service):
    path = openapi.document_path(service)
    assert path.exists(), f"{path} is missing: run `{openapi.WRITE_COMMAND}`"
    assert path.read_bytes() == openapi.render(documents[service]), \
        f"{path} is out of date with the code: run `{openapi.WRITE_COMMAND}`"


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_the_code_breaks_no_client_of_the_committed_document(documents, service):
    committed = orjson.loads(openapi.document_path(service).read_bytes())
    assert openapi.breaking_changes(committed, documents[service]) == []


def _doc() -> dict:
    return {
        "paths": {"/api/things/{id}": {
            "get": {"parameters": [{"in": "path", "name": "id", "required": True}],
                    "responses": {"200": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ThingPublic"}}}}}},
            "put": {"parameters": [{"in": "path", "name": "id", "required": True}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ThingUpdate"}}}},
                    "responses": {"200": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ThingPublic"}}}}}},
        }},
        "components": {"schemas": {
            "ThingPublic": {"type": "object", "required": ["id", "name"],
                            "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
            "ThingUpdate": {"type": "object", "required": [],
                            "properties": {"name": {"type": "string"}}},
        }},
    }


def test_additive_changes_break_nobody():
    old, new = _doc(), _doc()
    schemas = new["components"]["schemas"]
    schemas["ThingUpdate"]["properties"]["title"] = {"type": "string"}  # optional request field
    schemas["ThingPublic"]["properties"]["title"] = {"type": "string"}  # new response field...
    schemas["ThingPublic"]["required"].append("title")  # ...always present
    new["paths"]["/api/things"] = {"post": {"responses": {"201": {}}}}  # new operation
    new["paths"]["/api/things/{id}"]["get"]["parameters"].append({"in": "query", "name": "x"})
    assert openapi.breaking_changes(old, new) == []


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["paths"]["/api/things/{id}"].pop("put"), "PUT /api/things/{id}: operation removed"),
    (lambda d: d["components"]["schemas"]["ThingPublic"]["properties"].pop("name"),
     "GET /api/things/{id} 200.name: property removed"),
    (lambda d: d["components"]["schemas"]["ThingPublic"]["required"].remove("name"),
     "GET /api/things/{id} 200.name: property is no longer required"),
    (lambda d: d["components"]["schemas"]["ThingUpdate"]["required"].append("name"),
     "PUT /api/things/{id} request.name: property became required"),
    (lambda d: d["components"]["schemas"]["ThingUpdate"]["properties"].update(name={"type": "integer"}),
     "PUT /api/things/{id} request.name: type changed from string to integer"),
    (lambda d: d["paths"]["/api/things/{id}"]["get"]["parameters"].append(
        {"in": "query", "name": "since", "required": True}),
     "GET /api/things/{id}: query parameter since is required now"),
])
def test_breaking_changes_are_named(change, expected):
    old, new = _doc(), copy.deepcopy(_doc())
    change(new)
    assert expected in openapi.breaking_changes(old, new)


def test_write_refuses_a_breaking_change(tmp_path, monkeypatch, capsys):
    committed = _doc()
    current = copy.deepcopy(committed)
    current["paths"]["/api/things/{id}"].pop("put")
    monkeypatch.setattr(openapi, "build_documents", lambda: {"things": current})
    monkeypatch.setattr(openapi, "document_path", lambda service: tmp_path / f"{service}.json")
    (tmp_path / "things.json").write_bytes(openapi.render(committed))
    assert openapi.main(["--write"]) == 1
    assert "operation removed" in capsys.readouterr().err
    assert orjson.loads((tmp_path / "things.json").read_bytes()) == committed
    assert openapi.main(["--check"]) == 1
    assert openapi.main(["--write", "--allow-breaking"]) == 0
    assert orjson.loads((tmp_path / "things.json").read_bytes()) == current
