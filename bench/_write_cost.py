"""The floor under a chat delivery: CPU of one socket write of one frame over loopback TCP, with
no chat code at all. A helper for docs/benchmarks.md (not part of `make bench`).

    .venv/bin/python bench/_write_cost.py [--sockets 500] [--frame 2000] [--rounds 2000]

The writing process sends `frame` bytes to each of `sockets` connected TCP sockets, round after
round (as an edge's tick writes one frame to every member); a child process reads them all with
epoll. Prints the writer's and the reader's CPU (user + system, from /proc) per write. On loopback
the kernel delivers inside the writer's send(): the receiving TCP stack's work is charged to the
writer, which is why a platform process pays for what a real network would do on another host.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds  # noqa: E402


def reader(listener: socket.socket, sockets: int, expected: int) -> None:
    conns = [listener.accept()[0] for _ in range(sockets)]
    ep = select.epoll()
    by_fd = {}
    for c in conns:
        c.setblocking(False)
        ep.register(c.fileno(), select.EPOLLIN)
        by_fd[c.fileno()] = c
    got = 0
    while got < expected:
        for fd, _ in ep.poll(1.0):
            while True:
                try:
                    data = by_fd[fd].recv(1 << 16)
                except BlockingIOError:
                    break
                if not data:
                    return
                got += len(data)
    os._exit(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sockets", type=int, default=500)
    p.add_argument("--frame", type=int, default=2000, help="bytes per write (a tick's frame)")
    p.add_argument("--rounds", type=int, default=2000)
    args = p.parse_args()
    listener = socket.create_server(("127.0.0.1", 0), backlog=args.sockets)
    port = listener.getsockname()[1]
    expected = args.sockets * args.frame * args.rounds
    child = os.fork()
    if child == 0:
        reader(listener, args.sockets, expected)
    writers = []
    for _ in range(args.sockets):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writers.append(s)
    frame = b"x" * args.frame
    me = os.getpid()
    w0, t0 = cpu_seconds([me])[me], time.monotonic()
    for _ in range(args.rounds):
        for s in writers:
            s.sendall(frame)
    w1 = cpu_seconds([me])[me]
    _, _, usage = os.wait4(child, 0)  # the reader's own CPU, whole life (its accepts are negligible)
    writes = args.sockets * args.rounds
    print(f"{writes} writes of {args.frame} B to {args.sockets} sockets in {time.monotonic() - t0:.2f} s: "
          f"writer {(w1 - w0) / writes * 1e6:.2f} us/write, reader "
          f"{(usage.ru_utime + usage.ru_stime) / writes * 1e6:.2f} us/write")


if __name__ == "__main__":
    main()
