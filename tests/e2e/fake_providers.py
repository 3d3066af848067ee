"""A local stand-in for the two hosted providers' APIs, implementing exactly the endpoints the
channels service calls, written from their API references:

- Mux Video (https://docs.mux.com/api-reference/video/live-streams): HTTP Basic (token id:secret);
  POST /video/v1/live-streams -> 201 {data: live stream}; POST .../{id}/reset-stream-key -> 201;
  PUT .../{id}/complete -> 200 {data: {}}; DELETE .../{id} -> 204; errors
  {error: {type, messages}}.
- Cloudflare Stream live inputs
  (https://developers.cloudflare.com/api/resources/stream/subresources/live_inputs/): Bearer token;
  POST /accounts/{account}/stream/live_inputs, PUT/DELETE .../{uid}; answers
  {result, success, errors, messages}.

Request bodies are checked against the documented fields: anything else is answered 400 as the
provider would and recorded in `violations`, which tests assert is empty. `fail_next` makes the
next matching call answer an error (or hang up) so tests can see what a failure leaves behind.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

MUX_TOKEN = ("mux-test-token-id", "mux-test-token-secret")
CF_ACCOUNT = "0123456789abcdef0123456789abcdef"
CF_TOKEN = "cf-test-api-token"
CF_PLAYBACK = "https://customer-testcode.cloudflarestream.com"

_POLICIES = {"public", "signed", "drm"}
_MUX_CREATE_FIELDS = {"playback_policies", "playback_policy", "advanced_playback_policies", "new_asset_settings",
                      "reconnect_window", "use_slate_for_standard_latency", "reconnect_slate_url",
                      "passthrough", "audio_only", "embedded_subtitles", "generated_subtitles",
                      "reduced_latency", "low_latency", "latency_mode", "test", "simulcast_targets",
                      "max_continuous_duration", "meta"}
_MUX_ASSET_FIELDS = {"playback_policies", "playback_policy", "passthrough", "mp4_support", "master_access",
                     "normalize_audio", "max_resolution_tier", "video_quality", "meta", "static_renditions"}
_CF_FIELDS = {"defaultCreator", "deleteRecordingAfterDays", "enabled", "meta", "recording"}
_CF_RECORDING = {"allowedOrigins", "hideLiveViewerCount", "mode", "requireSignedURLs", "timeoutSeconds"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeProviders:
    def __init__(self):
        self.lock = threading.Lock()
        self.mux: dict[str, dict] = {}
        self.cloudflare: dict[str, dict] = {}
        self.calls: list[tuple[str, str, dict | None]] = []  # (method, path, body)
        self.violations: list[str] = []
        self._failures: list[tuple[str, re.Pattern, int]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-providers", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The channels service's settings pointing at this server."""
        return {"MUX_TOKEN_ID": MUX_TOKEN[0], "MUX_TOKEN_SECRET": MUX_TOKEN[1], "MUX_API_BASE_URL": self.base_url,
                "CLOUDFLARE_ACCOUNT_ID": CF_ACCOUNT, "CLOUDFLARE_API_TOKEN": CF_TOKEN,
                "CLOUDFLARE_API_BASE_URL": f"{self.base_url}/client/v4",
                "CLOUDFLARE_PLAYBACK_BASE_URL": CF_PLAYBACK}

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, method: str, path_regex: str, status: int) -> None:
        """The next `method` call whose path matches answers `status` (0: the connection is closed)."""
        with self.lock:
            self._failures.append((method, re.compile(path_regex), status))

    def calls_to(self, method: str, path_regex: str) -> list[dict | None]:
        with self.lock:
            return [body for m, p, body in self.calls if m == method and re.search(path_regex, p)]

    def by_passthrough(self, channel_id: str) -> list[dict]:
        with self.lock:
            return [s for s in self.mux.values() if s.get("passthrough") == channel_id]

    def inputs_of(self, channel_id: str) -> list[dict]:
        with self.lock:
            return [i for i in self.cloudflare.values() if (i.get("meta") or {}).get("channelId") == channel_id]

    # ---- the HTTP side -------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, document=None):
                data = b"" if document is None else json.dumps(document).encode()
                self.send_response(status)
                if document is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = {"<not json>": raw.decode(errors="replace")}
                path = self.path.split("?", 1)[0]
                with fake.lock:
                    fake.calls.append((method, path, body))
                    failure = next((f for f in fake._failures if f[0] == method and f[1].search(path)), None)
                    if failure:
                        fake._failures.remove(failure)
                if failure:
                    if failure[2] == 0:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    return self._reply(failure[2], {"error": {"type": "injected", "messages": ["injected"]},
                                                    "success": False, "errors": [{"code": 1, "message": "x"}]})
                if path.startswith("/video/v1/"):
                    return fake._mux(self, method, path, body)
                if path.startswith("/client/v4/accounts/"):
                    return fake._cloudflare(self, method, path, body)
                self._reply(404, {"error": {"type": "not_found", "messages": ["no such endpoint"]}})

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def do_DELETE(self):
                self._handle("DELETE")

            def do_GET(self):
                self._handle("GET")

        return Handler

    def _violation(self, handler, provider: str, message: str):
        with self.lock:
            self.violations.append(message)
        if provider == "mux":
            return handler._reply(400, {"error": {"type": "invalid_parameters", "messages": [message]}})
        return handler._reply(400, {"result": None, "success": False,
                                    "errors": [{"code": 10005, "message": message}], "messages": []})

    # ---- Mux -------------------------------------------------------------------------------------

    def _mux(self, h, method: str, path: str, body):
        expected = "Basic " + base64.b64encode(f"{MUX_TOKEN[0]}:{MUX_TOKEN[1]}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            return h._reply(401, {"error": {"type": "unauthorized", "messages": ["Unauthorized request"]}})
        if method == "POST" and path == "/video/v1/live-streams":
            problem = self._check_mux_create(body)
            if problem:
                return self._violation(h, "mux", problem)
            stream = {"id": secrets.token_urlsafe(30)[:40], "stream_key": str(uuid.uuid4()), "status": "idle",
                      "created_at": str(int(datetime.now(UTC).timestamp())), "reconnect_window": 60,
                      "latency_mode": "standard", "max_continuous_duration": 43200,
                      "srt_passphrase": secrets.token_urlsafe(24),
                      "playback_ids": [{"policy": p, "id": secrets.token_urlsafe(30)[:40]}
                                       for p in body.get("playback_policies") or []],
                      "new_asset_settings": body.get("new_asset_settings") or {},
                      "passthrough": body.get("passthrough")}
            with self.lock:
                self.mux[stream["id"]] = stream
            return h._reply(201, {"data": stream})
        m = re.fullmatch(r"/video/v1/live-streams/([^/]+)(?:/(reset-stream-key|complete))?", path)
        stream = self.mux.get(m.group(1)) if m else None
        if stream is None:
            return h._reply(404, {"error": {"type": "not_found", "messages": ["Live stream not found"]}})
        action = m.group(2)
        if body not in (None, {}):
            return self._violation(h, "mux", f"{method} {action or 'live stream'} takes no body")
        if method == "POST" and action == "reset-stream-key":
            stream["stream_key"] = str(uuid.uuid4())
            return h._reply(201, {"data": stream})
        if method == "PUT" and action == "complete":
            stream["status"] = "idle"
            return h._reply(200, {"data": {}})
        if method == "DELETE" and action is None:
            with self.lock:
                self.mux.pop(stream["id"], None)
            return h._reply(204)
        h._reply(405, {"error": {"type": "not_allowed", "messages": ["method not allowed"]}})

    @staticmethod
    def _check_mux_create(body) -> str | None:
        if not isinstance(body, dict):
            return "the body is a JSON object"
        unknown = set(body) - _MUX_CREATE_FIELDS
        if unknown:
            return f"unknown fields {sorted(unknown)}"
        policies = body.get("playback_policies", [])
        if not isinstance(policies, list) or not set(policies) <= _POLICIES:
            return "playback_policies is a list of public|signed|drm"
        passthrough = body.get("passthrough")
        if passthrough is not None and (not isinstance(passthrough, str) or len(passthrough) > 255):
            return "passthrough is a string of at most 255 characters"
        asset = body.get("new_asset_settings", {})
        if not isinstance(asset, dict) or set(asset) - _MUX_ASSET_FIELDS:
            return "new_asset_settings has unknown fields"
        if not set(asset.get("playback_policies", [])) <= _POLICIES:
            return "new_asset_settings.playback_policies is a list of public|signed|drm"
        return None

    # ---- Cloudflare ----------------------------------------------------------------------------

    def _cloudflare(self, h, method: str, path: str, body):
        if h.headers.get("Authorization") != f"Bearer {CF_TOKEN}":
            return h._reply(403, {"result": None, "success": False,
                                  "errors": [{"code": 10000, "message": "Authentication error"}], "messages": []})
        m = re.fullmatch(rf"/client/v4/accounts/{CF_ACCOUNT}/stream/live_inputs(?:/([0-9a-f]{{32}}))?", path)
        if m is None:
            return h._reply(404, {"result": None, "success": False,
                                  "errors": [{"code": 7003, "message": "No route for the URI"}], "messages": []})
        uid = m.group(1)
        if method in ("POST", "PUT"):
            problem = self._check_cf_body(body)
            if problem:
                return self._violation(h, "cloudflare", problem)
        if method == "POST" and uid is None:
            uid = secrets.token_hex(16)
            live = {"uid": uid, "created": _now(), "modified": _now(), "status": None, "enabled": True,
                    "meta": body.get("meta") or {}, "recording": body.get("recording") or {"mode": "off"},
                    "deleteRecordingAfterDays": body.get("deleteRecordingAfterDays"),
                    "rtmps": {"url": "rtmps://live.cloudflare.com:443/live/", "streamKey": secrets.token_hex(16) + "k" + uid},
                    "rtmpsPlayback": {"url": "rtmps://live.cloudflare.com:443/live/", "streamKey": secrets.token_hex(16)},
                    "srt": {"url": "srt://live.cloudflare.com:778", "streamId": uid, "passphrase": secrets.token_hex(16)},
                    "srtPlayback": {"url": "srt://live.cloudflare.com:778", "streamId": "play" + uid,
                                    "passphrase": secrets.token_hex(16)},
                    "webRTC": {"url": f"https://customer-testcode.cloudflarestream.com/{uid}/webRTC/publish"},
                    "webRTCPlayback": {"url": f"https://customer-testcode.cloudflarestream.com/{uid}/webRTC/play"}}
            with self.lock:
                self.cloudflare[uid] = live
            return h._reply(200, {"result": live, "success": True, "errors": [], "messages": []})
        live = self.cloudflare.get(uid) if uid else None
        if live is None:
            return h._reply(404, {"result": None, "success": False,
                                  "errors": [{"code": 10003, "message": "Not found"}], "messages": []})
        if method == "PUT":
            for key in ("enabled", "meta", "recording", "defaultCreator", "deleteRecordingAfterDays"):
                if key in body:
                    live[key] = body[key]
            live["modified"] = _now()
            return h._reply(200, {"result": live, "success": True, "errors": [], "messages": []})
        if method == "DELETE":
            with self.lock:
                self.cloudflare.pop(uid, None)
            return h._reply(200)
        h._reply(405, {"result": None, "success": False, "errors": [{"code": 10405, "message": "not allowed"}],
                       "messages": []})

    @staticmethod
    def _check_cf_body(body) -> str | None:
        if not isinstance(body, dict):
            return "the body is a JSON object"
        unknown = set(body) - _CF_FIELDS
        if unknown:
            return f"unknown fields {sorted(unknown)}"
        if "enabled" in body and not isinstance(body["enabled"], bool):
            return "enabled is a boolean"
        if "meta" in body and not isinstance(body["meta"], dict):
            return "meta is an object"
        recording = body.get("recording", {})
        if not isinstance(recording, dict) or set(recording) - _CF_RECORDING:
            return "recording has unknown fields"
        if recording.get("mode", "off") not in ("off", "automatic"):
            return "recording.mode is off|automatic"
        return None
