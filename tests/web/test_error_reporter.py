"""The web client's error reporter (web/errors.js) under Node: its scrubbing gives what the
services' redaction (servicekit.logging.redact_text) gives, text for text; with no DSN it sends
nothing; with one, an uncaught error and an unhandled rejection become Sentry envelopes for that
DSN, scrubbed, at most ten a page and each once. The real page through the gateway to a receiver:
tests/e2e/web/test_error_reporting.py."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from devstack.envelopes import parse_envelope
from servicekit.logging import redact_text

MODULE = (Path(__file__).resolve().parents[2] / "web" / "errors.js").as_uri()
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (make setup installs it)")

KEY = "live_" + secrets.token_urlsafe(32)
JWT = ("eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAwMDB9"
       ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmU")
DSN = "http://pub@127.0.0.1:9/42"


def node(script: str) -> dict:
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


TEXTS = [
    f"publish refused for {KEY}", f"rtmp://ingest/live/{KEY}", "live_window_seconds_for_the_directory",
    f"Authorization: Bearer {JWT}", "authorization: bearer s3cr3t-t0k3n", f"token {JWT} expired",
    "cannot reach nats://channels:pw-9f3a@nats:4222", "https://x/cb?code=abc123&state=s1#access_token=f00",
    "body was password=hunter2&login=ada", "{'refresh_token': 'r3fr', 'user': 'ada'}", '{"streamKey": "k3y"}',
    "Cookie: session=c00kie; theme=dark", "X-Stream-Key: k3y-v4l", "the token expired; 3 passed, exit code=1",
    "/dashboard?channel=abc&token=t0k&page=2",
]


def test_the_browser_scrubs_exactly_as_the_services_do():
    got = node(f"""
import {{ scrub }} from "{MODULE}";
console.log(JSON.stringify({json.dumps(TEXTS)}.map(scrub)));
""")
    assert got == [redact_text(t) for t in TEXTS]
    for text in got:
        for secret in (KEY, JWT, "s3cr3t", "pw-9f3a", "abc123", "f00", "hunter2", "r3fr", "k3y", "c00kie", "t0k"):
            assert secret not in text, text


HARNESS = """
import { install, buildEvent, frames } from "MODULE_URL";
const target = new EventTarget();
const posts = [];
let configAsked = 0;
const CONFIG = CONFIG_JSON;
async function fetch(url, init = {}) {
  if (url === "/api/client/config") {
    configAsked += 1;
    return { ok: true, json: async () => CONFIG };
  }
  posts.push({ url, body: init.body, credentials: init.credentials, headers: init.headers });
  return { ok: true };
}
const location = { href: "https://streams.example/dashboard?channel=c1&token=TOKEN", origin: "https://streams.example" };
const reporter = install(target, { fetch, location, userAgent: "node-test" });
function fail(error) {
  const e = new Event("error");
  Object.assign(e, { error, message: error.message, filename: "https://streams.example/pages/dashboard.js" });
  target.dispatchEvent(e);
}
function reject(reason) {
  const e = new Event("unhandledrejection");
  e.reason = reason;
  target.dispatchEvent(e);
}
const out = {};
""".replace("MODULE_URL", MODULE)


def run(config: dict, scenario: str) -> dict:
    return node(HARNESS.replace("CONFIG_JSON", json.dumps(config)).replace("TOKEN", JWT) + scenario
                + "\nawait reporter.ready();\nout.posts = posts; out.configAsked = configAsked;"
                + "\nconsole.log(JSON.stringify(out));")


def test_without_a_dsn_nothing_is_sent():
    out = run({"errorTracking": None}, f"""
fail(new Error("boom {KEY}"));
reject(new Error("nope"));
""")
    assert out["posts"] == [] and out["configAsked"] == 1


def test_an_error_and_a_rejection_become_scrubbed_envelopes_for_the_dsn():
    out = run({"errorTracking": {"dsn": DSN, "environment": "staging", "release": "web@1.2.3"}}, f"""
function renderKey() {{ throw new TypeError("cannot show key {KEY} for Bearer {JWT}"); }}
try {{ renderKey(); }} catch (e) {{ fail(e); }}
reject(new Error("refresh failed: password=hunter2"));
reject("a plain string");
""")
    assert out["configAsked"] == 1
    assert [p["url"] for p in out["posts"]] == ["/api/client/errors"] * 3
    assert all(p["credentials"] == "omit" for p in out["posts"])
    events = []
    for post in out["posts"]:
        header, items = parse_envelope(post["body"].encode())
        assert header["dsn"] == DSN
        [(item, payload)] = items
        assert item["type"] == "event" and item["length"] == len(payload)
        events.append(json.loads(payload))
        assert header["event_id"] == events[-1]["event_id"] and len(header["event_id"]) == 32
    thrown, rejected, plain = events
    assert thrown["exception"]["values"][0]["type"] == "TypeError"
    assert thrown["exception"]["values"][0]["value"] == "cannot show key [redacted] for Bearer [redacted]"
    assert thrown["exception"]["values"][0]["mechanism"] == {"type": "onerror", "handled": False}
    assert thrown["exception"]["values"][0]["stacktrace"]["frames"][-1]["function"] == "renderKey"
    assert (thrown["release"], thrown["environment"], thrown["tags"]["service"]) == ("web@1.2.3", "staging", "web")
    assert thrown["request"]["url"] == "https://streams.example/dashboard?channel=c1&token=[redacted]"
    assert rejected["exception"]["values"][0]["value"] == "refresh failed: password=[redacted]"
    assert rejected["exception"]["values"][0]["mechanism"]["type"] == "onunhandledrejection"
    assert plain["exception"]["values"][0] == {"type": "UnhandledRejection", "value": "a plain string",
                                               "mechanism": {"type": "onunhandledrejection", "handled": False}}
    everything = json.dumps(out["posts"])
    assert KEY not in everything and JWT not in everything and "hunter2" not in everything


def test_reports_are_bounded_deduplicated_and_only_for_the_pages_own_scripts():
    out = run({"errorTracking": {"dsn": DSN, "environment": "production", "release": None}}, """
const same = new Error("same");
fail(same); fail(same);
const foreign = new Event("error");
Object.assign(foreign, { error: new Error("ext"), message: "ext", filename: "chrome-extension://abc/content.js" });
target.dispatchEvent(foreign);
const opaque = new Event("error");
Object.assign(opaque, { error: null, message: "Script error.", filename: "" });
target.dispatchEvent(opaque);
for (let i = 0; i < 30; i++) reject(new Error(`distinct ${i}`));
""")
    values = [json.loads(parse_envelope(p["body"].encode())[1][0][1])["exception"]["values"][0]["value"]
              for p in out["posts"]]
    assert len(values) == 10
    assert values.count("same") == 1 and "ext" not in values and "Script error." not in values
    assert "release" not in json.loads(parse_envelope(out["posts"][0]["body"].encode())[1][0][1])


def test_stack_lines_of_v8_and_firefox_become_frames_oldest_first():
    out = node(f"""
import {{ frames }} from "{MODULE}";
const v8 = "TypeError: x\\n    at inner (https://s.example/app.js?token=T:10:5)\\n    at https://s.example/ui.js:3:1";
const ff = "inner@https://s.example/app.js:10:5\\n@https://s.example/ui.js:3:1";
console.log(JSON.stringify({{ v8: frames(v8), ff: frames(ff) }}));
""")
    for got in (out["v8"], out["ff"]):
        assert [(f["filename"].split("?")[0], f["lineno"], f["colno"]) for f in got] == \
            [("/ui.js", 3, 1), ("/app.js", 10, 5)]
    assert out["v8"][1]["abs_path"] == "https://s.example/app.js?token=[redacted]"
    assert out["v8"][1]["function"] == "inner"
