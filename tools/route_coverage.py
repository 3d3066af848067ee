"""API route coverage: which HTTP routes of which service did the test suite execute?

A route counts as covered when at least one statement of its handler body ran under pytest-cov.
Reads the `.coverage` data file `make test` leaves behind; exits 1 below the threshold
(ROUTE_COVERAGE_MIN, default 95).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import textwrap
from pathlib import Path

import coverage
from fastapi.routing import APIRoute

from devstack.stack import SERVICES


def handler_statements(fn) -> tuple[str, set[int]]:
    fn = inspect.unwrap(fn)
    path = inspect.getsourcefile(fn)
    lines, start = inspect.getsourcelines(fn)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    func = tree.body[0]
    body_lines = set()
    for stmt in func.body:
        if isinstance(stmt, ast.Expr) and isinstance(getattr(stmt, "value", None), ast.Constant):
            continue  # docstring
        body_lines.update(range(stmt.lineno + start - 1, stmt.end_lineno + start))
    return str(Path(path).resolve()), body_lines


def api_routes(routes):
    """Flatten routers (FastAPI wraps included routers; their routes keep their full path)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None) or getattr(route, "routes", None)
        if inner is not None:
            yield from api_routes(getattr(inner, "routes", inner))


def main(argv: list[str]) -> int:
    minimum = float(os.environ.get("ROUTE_COVERAGE_MIN", "95"))
    data = coverage.Coverage(data_file=".coverage").get_data()
    data.read()
    rows, covered = [], 0
    for svc in SERVICES:
        app = importlib.import_module(f"{svc.module}.main").create_app(configure_process=False)
        for route in api_routes(app.routes):
            if not route.include_in_schema:
                continue
            path, body = handler_statements(route.endpoint)
            executed = set(data.lines(path) or ())
            hit = bool(body & executed)
            covered += hit
            for method in sorted(route.methods):
                rows.append((svc.name, method, route.path, hit))
    routes = len({(s, m, p) for s, m, p, _ in rows})
    hit_routes = len({(s, m, p) for s, m, p, h in rows if h})
    pct = 100.0 * hit_routes / routes if routes else 100.0
    print(f"\nAPI route coverage: {hit_routes}/{routes} routes executed by the tests ({pct:.1f}%)")
    for svc, method, path, hit in rows:
        if not hit:
            print(f"  not covered: {svc} {method} {path}")
    if pct < minimum:
        print(f"route coverage {pct:.1f}% is below the required {minimum:.0f}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
