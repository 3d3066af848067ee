"""What the test receivers (OTLP spans, error-tracking envelopes) share: an HTTP server on a free
loopback port, served from a daemon thread while a `with` block runs."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from devstack.ports import free_port


class LoopbackReceiver:
    thread_name = "receiver"

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
