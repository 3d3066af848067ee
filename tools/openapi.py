"""Each service's OpenAPI document, committed as services/<name>/openapi.json, like the AsyncAPI one.

    python tools/openapi.py            print every document (one JSON object keyed by service)
    python tools/openapi.py --check    exit 1 if a committed document is out of date
    python tools/openapi.py --write    update the committed documents (refuses a breaking change)
    python tools/openapi.py --write --allow-breaking   ...and write it anyway (say so in the change)

A change breaks a client deployed against the committed document when:
- an operation (path and method) is gone;
- a parameter became required, or a required one appeared;
- a request body's property was removed, became required, or changed type or allowed values
  (clients send what the old document said);
- a success response's property was removed, stopped being required, or changed type or allowed
  values (clients read what the old document promised).
A new optional request property, a new response property and a new operation are additive.
Schemas are compared with contracts.compat's rules, filtered by the direction of the message.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import orjson
from contracts.compat import _Comparison
from devstack.stack import REPO_ROOT, SERVICES

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
WRITE_COMMAND = "python tools/openapi.py --write"


def document_path(service: str) -> Path:
    return REPO_ROOT / "services" / service / "openapi.json"


def build_documents() -> dict[str, dict[str, Any]]:
    return {svc.name: importlib.import_module(f"{svc.module}.main").create_app(configure_process=False).openapi()
            for svc in SERVICES}


def render(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _schema(doc: dict[str, Any], content: dict[str, Any] | None) -> dict[str, Any] | None:
    for media_type in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data"):
        if content and media_type in content:
            return content[media_type].get("schema", {})
    return None


def _compare(old_doc, new_doc, old, new, path: str, ignore: str) -> list[str]:
    found: list[str] = []
    _Comparison(old_doc, new_doc, found).compare(old, new, path)
    return [p for p in found if not p.endswith(ignore)]


def breaking_changes(old_doc: dict[str, Any], new_doc: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    new_paths = new_doc.get("paths", {})
    for route, old_item in sorted(old_doc.get("paths", {}).items()):
        for method in METHODS:
            old_op = old_item.get(method)
            if old_op is None:
                continue
            name = f"{method.upper()} {route}"
            new_op = new_paths.get(route, {}).get(method)
            if new_op is None:
                problems.append(f"{name}: operation removed")
                continue
            old_params = {(p["in"], p["name"]): p for p in old_op.get("parameters", [])}
            for p in new_op.get("parameters", []):
                before = old_params.get((p["in"], p["name"]))
                if p.get("required") and not (before and before.get("required")):
                    problems.append(f"{name}: {p['in']} parameter {p['name']} is required now")
            old_body = _schema(old_doc, (old_op.get("requestBody") or {}).get("content"))
            new_body = _schema(new_doc, (new_op.get("requestBody") or {}).get("content"))
            if old_body is not None and new_body is None:
                problems.append(f"{name}: request body removed")
            elif new_body is not None:
                if old_body is None:
                    if (new_op.get("requestBody") or {}).get("required"):
                        problems.append(f"{name}: a request body is required now")
                else:
                    problems += _compare(old_doc, new_doc, old_body, new_body, f"{name} request",
                                         ignore=": property is no longer required")
            for status, old_response in sorted(old_op.get("responses", {}).items()):
                if not status.startswith("2"):
                    continue
                new_response = new_op.get("responses", {}).get(status)
                if new_response is None:
                    problems.append(f"{name}: response {status} removed")
                    continue
                old_out = _schema(old_doc, old_response.get("content"))
                new_out = _schema(new_doc, new_response.get("content"))
                if old_out is not None and new_out is not None:
                    problems += _compare(old_doc, new_doc, old_out, new_out, f"{name} {status}",
                                         ignore=": property became required")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/openapi.py", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    parser.add_argument("--allow-breaking", action="store_true")
    args = parser.parse_args(argv)
    documents = build_documents()
    if not (args.write or args.check):
        sys.stdout.buffer.write(orjson.dumps(documents, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        return 0
    status = 0
    for service, document in documents.items():
        path = document_path(service)
        rendered = render(document)
        committed = path.read_bytes() if path.exists() else None
        problems = breaking_changes(orjson.loads(committed), document) if committed is not None else []
        if args.check:
            if committed != rendered:
                print(f"{path} is out of date: run `{WRITE_COMMAND}`", file=sys.stderr)
                status = 1
        elif problems and not args.allow_breaking:
            print(f"refusing to write {path}: breaking changes for its clients", file=sys.stderr)
            status = 1
        elif committed != rendered:
            path.write_bytes(rendered)
            print(f"wrote {path}")
        for problem in problems:
            print(f"  - {service}: {problem}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
