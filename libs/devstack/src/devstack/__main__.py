"""`python -m devstack run`: the whole platform in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from devstack.ports import PortInUse
from devstack.processes import StartupFailed
from devstack.stack import CHAT_EDGES, CREDENTIALS_FILE, SERVICES, Stack, StackConfig


def _banner(stack: Stack) -> str:
    c = stack.config
    rows = [
        ("Web app", f"{c.gateway_url}/"),
        ("API", f"{c.gateway_url}/api/..."),
        ("API docs", ", ".join(f"{c.gateway_url}/api/{s.name}/openapi.json" for s in SERVICES)),
        ("Chat socket", f"{c.gateway_url.replace('http', 'ws', 1)}/ws  ({len(CHAT_EDGES)} edges behind the gateway)"),
        ("RTMP ingest", f"rtmp://{c.public_host}:{c.rtmp_port}/live  (stream key from the dashboard)"),
        ("SRT ingest", f"srt://{c.public_host}:{c.srt_port}?streamid=<stream key>  (UDP; OBS: the whole URL as Server)"),
        ("NATS", f"nats://127.0.0.1:{c.nats_port}  (user admin; monitoring http://127.0.0.1:{c.nats_monitor_port})"),
        ("PostgreSQL", f"postgresql://postgres@127.0.0.1:{c.postgres_port}/<service>"),
        ("Valkey", f"redis://127.0.0.1:{c.redis_port}/0"),
        # the passwords stay in the file: this banner ends up in terminals' scrollback and CI logs
        ("Passwords", f"{c.data_dir / CREDENTIALS_FILE}  (NATS users, Valkey)"),
        ("Logs", str(c.data_dir / "logs")),
        ("Data", str(c.data_dir)),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["", "The platform is up.", ""] + [f"  {k.ljust(width)}  {v}" for k, v in rows]
    lines += ["", "Press Ctrl-C to stop everything.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start every server, service and the gateway; Ctrl-C stops them")
    sub.add_parser("nats-authorization",
                   help="print the nats-server users and permissions (contracts.access) with "
                        "$NATS_PASSWORD_<USER> variables: deploy/k8s/base/nats.yaml's authorization.conf")
    args = parser.parse_args(argv)

    if args.command == "nats-authorization":
        from devstack.credentials import render_authorization

        print(render_authorization(None), end="")
        return 0

    if args.command == "run":
        stack = Stack(StackConfig.from_env(), log=lambda m: print(m, flush=True))
        # SIGTERM behaves like Ctrl-C so `kill` also leaves nothing running; a second one of
        # either while stopping stops the rest at once (and the lifeline covers a kill -9)
        stack.sup.stop_on_signals()
        try:
            stack.start()
            print(_banner(stack), flush=True)
            stack.watch()
        except KeyboardInterrupt:
            print("\nStopping...", flush=True)
        except (PortInUse, StartupFailed, RuntimeError, TimeoutError) as exc:
            print(f"\nerror: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            stack.stop()
            print("Everything stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
