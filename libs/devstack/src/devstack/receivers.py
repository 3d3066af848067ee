"""What the test receivers (OTLP spans, error-tracking envelopes) share: an HTTP server on a free
loopback port, served from a daemon thread while a `with` block runs."""

from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from devstack.ports import free_port


class QuietHandler(BaseHTTPRequestHandler):
    """A receiver's request handler: reads a body as its sender encoded it, and logs nothing (the
    tests' output stays readable)."""

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def decoded(self, body: bytes) -> bytes:
        """`body` before its Content-Encoding (gzip or deflate, as exporters send); raises on a bad one."""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        return body

    def log_message(self, *args) -> None:
        pass


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
