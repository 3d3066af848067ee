"""`python -m <service> migrate|serve`: the two things a deployment runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from servicekit.db import upgrade


def main(*, settings_factory: Callable, app_factory: Callable, migrations_dir: Path | None,
         commands: dict[str, Callable] | None = None, argv: list[str] | None = None) -> int:
    """`commands` adds service-specific subcommands: name -> fn(settings) returning an exit code."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations and exit")
    sub.add_parser("serve", help="run the HTTP service and its workers")
    for name, fn in (commands or {}).items():
        sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else None)
    args = parser.parse_args(argv)
    settings = settings_factory()
    if commands and args.command in commands:
        return int(commands[args.command](settings) or 0)
    if args.command == "migrate":
        if migrations_dir is not None:
            upgrade(migrations_dir, settings.database_url)
        return 0
    import uvicorn

    from servicekit.server import QuietServer

    app = app_factory(settings)
    problem = preflight(app, settings)
    if problem:
        print(f"{settings.service_name} cannot start: {problem}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, host=settings.host, port=settings.port, loop="uvloop",
                            http="httptools", access_log=False, server_header=False, proxy_headers=True,
                            forwarded_allow_ips=settings.forwarded_allow_ips, log_config=None,
                            timeout_graceful_shutdown=10)
    # uvicorn.run with the quieter server (servicekit/server.py)
    server = QuietServer(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0 if server.started else 3  # 3: uvicorn's STARTUP_FAILURE (a lifespan that failed)


def preflight(app, settings) -> str | None:
    """A sentence when a dependency the service cannot work without is misconfigured. Checked
    before uvicorn starts, because a failing lifespan prints a traceback an operator has to decode."""
    runtime = getattr(app.state, "runtime", None)
    if runtime is None or not runtime.uses_store:
        return None
    from servicekit.storage import ObjectStore, ObjectStoreUnavailable

    try:
        asyncio.run(ObjectStore.from_settings(settings).check())
    except (ObjectStoreUnavailable, ValueError) as exc:
        return f"object store: {exc}"
    return None


def run(**kwargs) -> None:
    sys.exit(main(**kwargs))
