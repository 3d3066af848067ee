"""A tiny Sentry envelope receiver for tests: services (sentry-sdk) and the web client's reports
post to it as they would to Sentry or GlitchTip (`SENTRY_DSN=receiver.dsn`), and a test reads what
arrived. It speaks the ingest endpoint the SDKs use, `POST /api/<project>/envelope/` (gzip or
deflate bodies, the key in `X-Sentry-Auth`, the `sentry_key` query parameter or the envelope's
own `dsn`), and keeps each envelope's raw bytes, so a test can assert that a secret appears nowhere
in what left the process, not only in the fields it thought to look at.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.receivers import LoopbackReceiver, QuietHandler

_PATH = re.compile(r"^/api/(?P<project>\d+)/envelope/?(?:\?.*)?$")


@dataclass
class Envelope:
    project: str
    raw: bytes  # the decompressed body, exactly as sent
    headers: dict[str, str]
    header: dict
    items: list[tuple[dict, bytes]] = field(default_factory=list)

    def events(self) -> list[dict]:
        return [json.loads(payload) for h, payload in self.items if h.get("type") == "event"]


def parse_envelope(body: bytes) -> tuple[dict, list[tuple[dict, bytes]]]:
    """Header line, then (item header, payload) pairs; a payload is `length` bytes, or one line."""
    line, _, rest = body.partition(b"\n")
    header = json.loads(line)
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        item_header = json.loads(line)
        length = item_header.get("length")
        if length is not None:
            payload, rest = rest[:length], rest[length:]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((item_header, payload))
    return header, items


class EnvelopeReceiver(LoopbackReceiver):
    """`with EnvelopeReceiver() as r:` listens on a free loopback port until the block ends;
    `r.dsn` is the DSN to configure, `r.events()` what arrived."""

    thread_name = "envelope-receiver"

    def __init__(self, *, project: str = "42", public_key: str = "e2e0public0key", port: int | None = None):
        self.project = project
        self.public_key = public_key
        super().__init__(port)
        self._envelopes: list[Envelope] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()

    @property
    def dsn(self) -> str:
        return f"http://{self.public_key}@127.0.0.1:{self.port}/{self.project}"

    def start(self) -> EnvelopeReceiver:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                match = _PATH.match(self.path)
                body = self.read_body()
                if not match or match["project"] != receiver.project:
                    receiver.refused.append(f"path {self.path}")
                    self.send_error(404)
                    return
                try:
                    body = self.decoded(body)
                    header, items = parse_envelope(body)
                except Exception as exc:  # what Sentry answers a malformed envelope
                    receiver.refused.append(f"malformed: {exc!r}")
                    self.send_error(400)
                    return
                key = re.search(r"sentry_key=([^,&\s]+)", f"{self.headers.get('X-Sentry-Auth', '')} {self.path}")
                named = re.match(r"https?://([^@:/]+)", str(header.get("dsn") or ""))
                if (key and key[1]) != receiver.public_key and (named and named[1]) != receiver.public_key:
                    receiver.refused.append("unknown key")
                    self.send_error(401)
                    return
                with receiver._lock:
                    receiver._envelopes.append(Envelope(match["project"], body, dict(self.headers), header, items))
                answer = json.dumps({"id": header.get("event_id")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.serve(Handler)
        return self

    @property
    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return list(self._envelopes)

    def events(self) -> list[dict]:
        return [event for envelope in self.envelopes for event in envelope.events()]

    def raw(self) -> bytes:
        """Every byte that arrived, for "this secret is nowhere" assertions."""
        return b"\n".join(e.raw for e in self.envelopes)

    def clear(self) -> None:
        with self._lock:
            self._envelopes.clear()

    def wait_for(self, predicate: Callable[[dict], object], timeout: float = 15.0) -> dict:
        """The first event for which `predicate(event)` is truthy; raises with what did arrive."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events():
                if predicate(event):
                    return event
            if time.monotonic() > deadline:
                seen = [(e.get("tags", {}).get("service"), _title(e)) for e in self.events()]
                raise TimeoutError(f"no matching event within {timeout}s; got {seen[:20]}; refused {self.refused[:5]}")
            time.sleep(0.05)


def _title(event: dict) -> str:
    values = (event.get("exception") or {}).get("values") or []
    if values:
        return f"{values[-1].get('type')}: {values[-1].get('value')}"[:120]
    return str((event.get("logentry") or {}).get("message") or event.get("message"))[:120]
