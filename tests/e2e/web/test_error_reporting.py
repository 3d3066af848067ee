"""The web client's error reporter in Chromium, through the gateway and the auth service's tunnel
to the stack's error tracker (a local envelope receiver, the e2e stack's SENTRY_DSN): a page loads
without asking for the error settings; an uncaught error and an unhandled rejection arrive as
`web` events, with none of the secrets in the page's URL or the errors' messages. The reporter's
own rules are unit-tested under Node in tests/web/test_error_reporter.py."""

from __future__ import annotations

import secrets

import pytest

pytestmark = pytest.mark.e2e


def test_a_thrown_error_in_the_page_reaches_the_error_tracker_scrubbed(browser, base_url, error_tracker, make_user):
    user = make_user()
    token, key = user["accessToken"], "live_" + secrets.token_urlsafe(32)
    marker = secrets.token_hex(6)
    ctx = browser.new_context(base_url=base_url)
    try:
        page = ctx.new_page()
        asked = []
        page.on("request", lambda r: asked.append(r.url) if "/api/client/" in r.url else None)
        page.goto(f"/?token={token}&stream_key={key}")
        page.get_by_role("heading", level=1).first.wait_for()
        assert asked == [], "the page asked for the error settings before any error"

        page.evaluate("""([marker, key, token]) => {
            setTimeout(() => { throw new TypeError(`render ${marker} failed for key ${key}`); });
            Promise.reject(new Error(`refresh ${marker} failed: Bearer ${token}`));
        }""", [marker, key, token])

        def ours(kind):
            return lambda e: (e.get("tags", {}).get("service") == "web" and marker in str(e.get("exception"))
                              and e["exception"]["values"][0]["mechanism"]["type"] == kind)

        thrown = error_tracker.wait_for(ours("onerror"))
        rejected = error_tracker.wait_for(ours("onunhandledrejection"))
    finally:
        ctx.close()
    assert thrown["exception"]["values"][0]["type"] == "TypeError"
    assert thrown["exception"]["values"][0]["value"] == f"render {marker} failed for key [redacted]"
    assert rejected["exception"]["values"][0]["value"] == f"refresh {marker} failed: Bearer [redacted]"
    assert thrown["environment"] == "e2e" and thrown["platform"] == "javascript"
    assert thrown["request"]["url"].endswith("/?token=[redacted]&stream_key=[redacted]")
    assert "Chrome" in thrown["request"]["headers"]["User-Agent"]
    # exactly once each, whatever else the session reported
    assert sum(1 for e in error_tracker.events() if marker in str(e.get("exception"))) == 2
    raw = error_tracker.raw()
    for secret in (token, token.rsplit(".", 1)[1], key, user["refreshToken"]):
        assert secret.encode() not in raw
