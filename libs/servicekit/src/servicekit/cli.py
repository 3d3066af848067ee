"""`python -m <service> migrate|serve`: the two things a deployment runs."""

from __future__ import annotations

import argparse
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

    uvicorn.run(app_factory(settings), host=settings.host, port=settings.port, loop="uvloop",
                http="httptools", access_log=False, server_header=False, proxy_headers=True,
                forwarded_allow_ips=settings.forwarded_allow_ips, log_config=None, timeout_graceful_shutdown=10)
    return 0


def run(**kwargs) -> None:
    sys.exit(main(**kwargs))
