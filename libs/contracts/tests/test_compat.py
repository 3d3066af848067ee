import copy

import pytest
from contracts.asyncapi import build_document
from contracts.compat import breaking_changes

NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def _doc(data: dict, *, version: int = 1, schemas: dict | None = None) -> dict:
    return {
        "components": {
            "messages": {
                "thing.happened": {
                    "x-schema-version": version,
                    "payload": {
                        "type": "object",
                        "properties": {"type": {"const": "thing.happened", "type": "string"}, "data": data},
                        "required": ["type", "data"],
                    },
                }
            },
            "schemas": schemas or {},
        }
    }


BASE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "count": {"type": "integer"},
        "note": NULLABLE_STRING,
        "status": {"enum": ["OFFLINE", "LIVE"], "type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "at": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "count", "note", "status", "tags", "at"],
}


def _changed(mutate) -> dict:
    data = copy.deepcopy(BASE)
    mutate(data)
    return data


def test_identical_documents_are_compatible():
    assert breaking_changes(_doc(BASE), _doc(copy.deepcopy(BASE))) == []


def test_adding_an_optional_property_is_compatible():
    new = _changed(lambda d: d["properties"].update(extra={"type": "string"}))
    assert breaking_changes(_doc(BASE), _doc(new)) == []


def test_description_changes_are_compatible():
    new = _changed(lambda d: d["properties"]["id"].update(description="The id."))
    assert breaking_changes(_doc(BASE), _doc(new)) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: (d["properties"].pop("count"), d["required"].remove("count")),
            "payload.data.count: property removed",
        ),
        (
            lambda d: (d["properties"].update(extra={"type": "string"}), d["required"].append("extra")),
            "payload.data.extra: property became required",
        ),
        (lambda d: d["required"].remove("note"), "payload.data.note: property is no longer required"),
        (
            lambda d: d["properties"].update(count={"type": "string"}),
            "payload.data.count: type changed from integer to string",
        ),
        (
            lambda d: d["properties"].update(note={"type": "string"}),
            "payload.data.note: type changed from null | string to string",
        ),
        (
            lambda d: d["properties"].update(id=NULLABLE_STRING),
            "payload.data.id: type changed from string to null | string",
        ),
        (
            lambda d: d["properties"]["at"].pop("format"),
            "payload.data.at: type changed from string (date-time) to string",
        ),
        (
            lambda d: d["properties"]["status"]["enum"].append("ARCHIVED"),
            (
                "payload.data.status: allowed values changed"
                " from {'LIVE', 'OFFLINE'} to {'ARCHIVED', 'LIVE', 'OFFLINE'}"
            ),
        ),
        (
            lambda d: d["properties"]["status"]["enum"].remove("LIVE"),
            "payload.data.status: allowed values changed from {'LIVE', 'OFFLINE'} to {'OFFLINE'}",
        ),
        (
            lambda d: d["properties"]["tags"].update(items={"type": "integer"}),
            "payload.data.tags[]: type changed from string to integer",
        ),
    ],
    ids=[
        "removed",
        "newly-required",
        "no-longer-required",
        "type",
        "nullable-dropped",
        "nullable-added",
        "format",
        "enum-added",
        "enum-removed",
        "array-items",
    ],
)
def test_breaking_changes_without_a_version_bump_are_reported(mutate, expected):
    assert breaking_changes(_doc(BASE), _doc(_changed(mutate))) == [f"thing.happened v1: {expected}"]


def test_the_same_changes_with_a_version_bump_are_accepted():
    new = _changed(lambda d: (d["properties"].pop("count"), d["properties"].update(id={"type": "integer"})))
    assert breaking_changes(_doc(BASE), _doc(new, version=1)) != []
    assert breaking_changes(_doc(BASE), _doc(new, version=2)) == []


def test_version_going_backwards_is_reported():
    assert breaking_changes(_doc(BASE, version=2), _doc(BASE, version=1)) == [
        "thing.happened: schema version went from v2 to v1"
    ]


def test_removing_a_message_is_reported():
    new = _doc(BASE)
    new["components"]["messages"].clear()
    assert breaking_changes(_doc(BASE), new) == ["thing.happened v1: message removed"]


def test_changes_behind_references_are_found():
    user = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "badges": {"type": "array"}},
        "required": ["id"],
    }
    old = _doc(
        {"$ref": "#/components/schemas/Message"},
        schemas={
            "Message": {"type": "object", "properties": {"user": {"$ref": "#/components/schemas/User"}}},
            "User": user,
        },
    )
    new = copy.deepcopy(old)
    new["components"]["schemas"]["User"]["properties"]["id"] = {"type": "integer"}

    assert breaking_changes(old, new) == [
        "thing.happened v1: payload.data.user.id: type changed from string to integer"
    ]


def test_recursive_schemas_terminate():
    node = {
        "type": "object",
        "properties": {"next": {"anyOf": [{"$ref": "#/components/schemas/Node"}, {"type": "null"}]}},
    }
    old = _doc({"$ref": "#/components/schemas/Node"}, schemas={"Node": node})
    new = copy.deepcopy(old)
    new["components"]["schemas"]["Node"]["properties"]["label"] = {"type": "string"}
    new["components"]["schemas"]["Node"]["required"] = ["label"]

    assert breaking_changes(old, new) == [
        "thing.happened v1: payload.data.label: property became required",
        "thing.happened v1: payload.data.next.label: property became required",
    ]


def test_on_the_real_document_a_break_needs_a_version_bump():
    old = build_document()
    new = copy.deepcopy(old)
    profile = new["components"]["schemas"]["UserProfile"]
    del profile["properties"]["displayName"]
    profile["required"].remove("displayName")

    assert breaking_changes(old, new) == [
        "user.registered v1: payload.data.displayName: property removed",
        "user.updated v1: payload.data.displayName: property removed",
    ]

    for event_type in ("user.registered", "user.updated"):
        new["components"]["messages"][event_type]["x-schema-version"] = 2
    assert breaking_changes(old, new) == []


def test_on_the_real_document_an_additive_change_needs_no_bump():
    old = build_document()
    new = copy.deepcopy(old)
    new["components"]["schemas"]["ChatUser"]["properties"]["color"] = {"type": "string"}
    assert breaking_changes(old, new) == []
