"""The stream page (/streams/<slug>) in a real browser (Debian's Chromium) through the gateway:
following a channel (and the anonymous visitor's way to it), sharing the page's address, the chat
catching up on what was said while the viewer's connection was down, and keyboard focus."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from .common import log_in, needs_chat, own_channel
from .conftest import PASSWORD

pytestmark = [pytest.mark.e2e]


# The chat module keeps its WebSocket to itself: the test remembers every socket the page opens
# (an init script, so no test hook in the app) to close the open one from the test.
SOCKET_PROBE = """
(() => {
  const Native = window.WebSocket;
  const sockets = window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); sockets.push(this); }
  };
})();
"""
CLOSE_CHAT_SOCKETS = """() => {
  const open = window.__sockets.filter((ws) => ws.url.endsWith('/ws') && ws.readyState === WebSocket.OPEN);
  for (const ws of open) ws.close(4000, 'test: connection dropped');
  return open.length;
}"""


def _creator_card(page):
    return page.get_by_role("region", name="About the creator")


def _follow_button(page):
    return _creator_card(page).locator("button[aria-pressed]")


def _followers(page):
    """The line under the creator's name: "@name · 2 followers"."""
    return _creator_card(page).locator(".creator-text .small")


def _followers_now(page) -> str:
    """The follower count as shown at this moment (no waiting: the page also re-reads the count
    every few seconds, which would hide a click that did not update it)."""
    found = re.search(r"\b\d+ followers?$", _followers(page).text_content().strip())
    return found.group(0) if found else ""


def _focus_ring(locator) -> dict:
    """The focused element's outline, and whether all of it is on screen: inside the viewport and
    not cut off by an ancestor that clips its overflow (the chat column, the creator card)."""
    return locator.evaluate("""el => {
        const s = getComputedStyle(el);
        const grow = parseFloat(s.outlineWidth) + parseFloat(s.outlineOffset);
        const r = el.getBoundingClientRect();
        const ring = {left: r.left - grow, top: r.top - grow, right: r.right + grow, bottom: r.bottom + grow};
        const outside = (box) => ring.left < box.left - 0.5 || ring.top < box.top - 0.5
            || ring.right > box.right + 0.5 || ring.bottom > box.bottom + 0.5;
        let clippedBy = outside({left: 0, top: 0, right: innerWidth, bottom: innerHeight}) ? 'viewport' : null;
        for (let p = el.parentElement; p && !clippedBy; p = p.parentElement) {
            const ps = getComputedStyle(p);
            if (ps.overflowX === 'visible' && ps.overflowY === 'visible') continue;
            const b = p.getBoundingClientRect();
            const inner = {left: b.left + parseFloat(ps.borderLeftWidth), top: b.top + parseFloat(ps.borderTopWidth),
                           right: b.right - parseFloat(ps.borderRightWidth), bottom: b.bottom - parseFloat(ps.borderBottomWidth)};
            if (outside(inner)) clippedBy = `${p.tagName.toLowerCase()}.${[...p.classList].join('.')}`;
        }
        return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor,
                visible: el.matches(':focus-visible'), clippedBy};
    }""")


def test_follow_from_anonymous_to_following_and_back(new_page, make_user, gateway):
    owner, early_fan, fan = make_user(), make_user(), make_user()
    channel = own_channel(gateway, owner)
    slug, name = channel["slug"], channel["name"]
    # someone already follows: the count below goes from 1 to 2 (and the word from singular to plural)
    r = gateway.post(f"/api/channels/{channel['id']}/follow", headers=early_fan["auth"])
    assert r.status_code == 204, r.text

    # anonymous: Follow is a link to the login page that brings the visitor back here
    page = new_page()
    page.goto(f"/streams/{slug}")
    card = _creator_card(page)
    expect(_followers(page)).to_have_text(re.compile(r"\b1 follower$"))
    link = card.get_by_role("link", name="Follow", exact=True)
    expect(link).to_have_attribute("href", f"/auth/login?next=%2Fstreams%2F{slug}")
    expect(_follow_button(page)).to_have_count(0)
    link.click()
    expect(page).to_have_url(re.compile(rf"/auth/login\?next=%2Fstreams%2F{slug}$"))
    expect(page.get_by_text("Log in to continue.")).to_be_visible()
    page.locator('form [name="login"]').fill(fan["username"])
    page.locator('form [name="password"]').fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/streams/{slug}$"))

    # signed in, not the owner: a toggle button
    follow = _follow_button(page)
    expect(follow).to_have_text("Follow")
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(follow).to_have_accessible_name(f"Follow {name}")
    expect(_followers(page)).to_have_text(re.compile(r"\b1 follower$"))
    follow.click()
    expect(follow).to_have_text("Following")
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(follow).to_have_accessible_name(f"Unfollow {name}")
    assert _followers_now(page) == "2 followers"  # updated with the button, not by the next poll

    # the server agrees, for the fan and for anyone
    seen = gateway.get(f"/api/channels/{channel['id']}", headers=fan["auth"]).json()
    assert seen["isFollowing"] is True and seen["followerCount"] == 2, seen
    assert gateway.get(f"/api/channels/{channel['id']}").json()["followerCount"] == 2

    # a reload keeps it
    page.reload()
    follow = _follow_button(page)
    expect(follow).to_have_text("Following")
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(_followers(page)).to_have_text(re.compile(r"\b2 followers$"))

    # pressing again unfollows, on the page, on the server and after a reload
    follow.click()
    expect(follow).to_have_text("Follow")
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(follow).to_have_accessible_name(f"Follow {name}")
    assert _followers_now(page) == "1 follower"
    seen = gateway.get(f"/api/channels/{channel['id']}", headers=fan["auth"]).json()
    assert seen["isFollowing"] is False and seen["followerCount"] == 1, seen
    page.reload()
    expect(_follow_button(page)).to_have_text("Follow")
    expect(_follow_button(page)).to_have_attribute("aria-pressed", "false")
    expect(_followers(page)).to_have_text(re.compile(r"\b1 follower$"))


def test_share_copies_the_page_address(new_page, make_user, gateway, base_url):
    owner = make_user()
    channel = own_channel(gateway, owner)
    page = new_page(1280, 800)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page.goto(f"/streams/{channel['slug']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(channel["name"])
    page.evaluate("navigator.clipboard.writeText('not the link')")  # so a copy that did nothing shows

    _creator_card(page).get_by_role("button", name="Share", exact=True).click()
    expect(_creator_card(page).get_by_role("status")).to_have_text("Link copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.url == f"{base_url}/streams/{channel['slug']}", (copied, page.url)


@needs_chat
def test_chat_catches_up_after_the_connection_drops(new_page, make_user, gateway, shot):
    owner, viewer_user = make_user(), make_user()
    channel = own_channel(gateway, owner)

    creator = new_page()
    log_in(creator, owner)
    creator.goto(f"/streams/{channel['slug']}")
    viewer = new_page()
    viewer.context.add_init_script(SOCKET_PROBE)
    log_in(viewer, viewer_user)
    sent: list[dict] = []  # what the viewer's page sends on its chat sockets
    received: list[dict] = []

    def watch(ws):
        if ws.url.endswith("/ws"):
            ws.on("framesent", lambda data: sent.append(json.loads(data)) if isinstance(data, str) else None)
            ws.on("framereceived", lambda data: received.extend(
                json.loads(line) for line in data.split("\n") if line.strip()) if isinstance(data, str) else None)

    viewer.on("websocket", watch)
    viewer.goto(f"/streams/{channel['slug']}")

    def log(page):
        return page.get_by_role("log", name="Chat messages")

    def texts(page):
        return log(page).locator(".chat-message .chat-text").all_text_contents()

    def say(text):
        box = creator.get_by_role("textbox", name="Chat message")
        box.fill(text)
        box.press("Enter")
        expect(log(creator).get_by_text(text, exact=True)).to_be_visible()  # acknowledged and echoed

    for page in (creator, viewer):
        expect(page.get_by_role("textbox", name="Chat message")).to_be_enabled(timeout=15_000)
    chat = viewer.locator("section.chat")
    expect(chat).to_have_attribute("data-connection", "open")
    say("before the drop")
    expect(log(viewer).get_by_text("before the drop", exact=True)).to_be_visible()
    viewer.evaluate("window.__samePage = true")  # gone if the page reloads

    # the viewer's network goes away. Chromium's offline emulation fails new connections but
    # leaves an open WebSocket alone, so the socket the page holds is closed as well.
    viewer.context.set_offline(True)
    try:
        assert viewer.evaluate(CLOSE_CHAT_SOCKETS) == 1
        expect(chat).to_have_attribute("data-connection", "reconnecting")
        expect(viewer.get_by_text("Chat is unavailable right now. Reconnecting…")).to_be_visible()
        expect(viewer.get_by_role("button", name="Send")).to_be_disabled()
        missed = ["missed one", "missed two", "missed three"]
        for text in missed:
            say(text)
        expect(log(viewer).get_by_text("missed one", exact=True)).to_have_count(0)
    finally:
        viewer.context.set_offline(False)

    # back online: the socket reconnects by itself and the page shows what it missed
    expect(chat).to_have_attribute("data-connection", "open", timeout=20_000)
    expect(log(viewer).get_by_text("missed three", exact=True)).to_be_visible(timeout=10_000)
    say("after the drop")  # a live message after the catch-up: everything before it has arrived
    expect(log(viewer).get_by_text("after the drop", exact=True)).to_be_visible()
    assert texts(viewer) == ["before the drop", *missed, "after the drop"]
    assert viewer.evaluate("window.__samePage === true"), "the page reloaded"
    expect(viewer.get_by_role("button", name="Send")).to_be_enabled()
    expect(viewer.get_by_text("Chat is unavailable right now. Reconnecting…")).to_have_count(0)

    # it was a resume: the second join asked for what came after the last message seen, and got it
    joins = [f for f in sent if f.get("type") == "chat:join"]
    assert len(joins) >= 2 and "since" not in joins[0] and isinstance(joins[-1].get("since"), int), joins
    histories = [e for e in received if e.get("type") == "chat:history"]
    assert histories[-1].get("recovered") is True, histories[-1]
    assert [m["content"] for m in histories[-1]["messages"]] == missed
    shot(viewer, "chat-after-resume", full_page=False)


def test_keyboard_reaches_follow_and_chat_with_a_visible_focus_ring(new_page, make_user, gateway, shot):
    owner, viewer_user = make_user(), make_user()
    channel = own_channel(gateway, owner)
    page = new_page(1280, 800)
    log_in(page, viewer_user)
    page.goto(f"/streams/{channel['slug']}")
    follow = _follow_button(page)
    chat_input = page.get_by_role("textbox", name="Chat message")
    expect(follow).to_be_visible()
    expect(chat_input).to_be_visible()

    targets = {"follow": follow, "chat input": chat_input}
    rings: dict[str, dict] = {}
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("""() => { const el = document.activeElement;
            return (el.getAttribute('aria-label') || el.textContent.trim() || el.name || el.id || el.tagName).slice(0, 40); }"""))
        for label, target in targets.items():
            if label not in rings and target.evaluate("el => el === document.activeElement"):
                rings[label] = _focus_ring(target)
                shot(page, f"stream-keyboard-{label.replace(' ', '-')}", full_page=False)
        if len(rings) == len(targets):
            break
    else:
        pytest.fail(f"Tab never reached {set(targets) - set(rings)}; focus went through {seen}")
    assert seen[0] == "Skip to content", seen
    for label, ring in rings.items():
        assert ring["visible"] and ring["style"] != "none" and ring["width"] >= 2, (label, ring)
        assert ring["clippedBy"] is None, (label, ring)


BURST = 8  # under the edge's 10 frames/s per socket: one sender's burst
HOLD_MS = 4000  # the viewer's main thread is held this long while the burst reaches its socket


def test_a_burst_of_messages_is_laid_out_per_frame_not_per_message(new_page, make_user, gateway):
    """A busy room's messages enter the chat log once per animation frame: laying the log out and
    scrolling it for every message had two pages use 85-99 % of a core at 100 msg/s
    (bench/chat_browser.py). Counted with DevTools' own layout counter, so no timing is judged.

    The viewer's main thread is held (a busy loop) while the burst is sent, so all eight messages
    wait in its task queue and run back to back, as in a busy room. Without the hold, messages that
    the network happens to spread over several frames each get a frame of their own, and a loaded
    CI machine did exactly that (4 layouts for 8 messages): per-frame batching had nothing to batch."""
    owner, viewer_user = make_user(), make_user()
    channel = own_channel(gateway, owner)
    creator, viewer = new_page(), new_page()
    for page, user in ((creator, owner), (viewer, viewer_user)):
        log_in(page, user)
        page.goto(f"/streams/{channel['slug']}")
        expect(page.get_by_role("textbox", name="Chat message")).to_be_enabled(timeout=15_000)
    expect(viewer.locator("section.chat")).to_have_attribute("data-connection", "open")

    cdp = viewer.context.new_cdp_session(viewer)
    cdp.send("Performance.enable")

    def layouts() -> float:
        return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "LayoutCount")

    # the viewer's page resolves once every row is in its log (no polling from here: a locator's
    # visibility check would lay the page out itself)
    viewer.evaluate("""(n) => { window.__arrived = new Promise((resolve) => {
      const log = document.querySelector('.chat-log');
      const done = () => log.querySelectorAll('.chat-message').length >= n && resolve(true);
      new MutationObserver(done).observe(log, { childList: true });
      setTimeout(() => resolve(log.querySelectorAll('.chat-message').length), 20000);
    }); }""", BURST)
    before = layouts()
    viewer.evaluate("""(ms) => { window.__held = new Promise((resolve) => setTimeout(() => {
      const until = performance.now() + ms;
      while (performance.now() < until) { /* hold the main thread */ }
      resolve(performance.timeOrigin + until);
    }, 0)); }""", HOLD_MS)
    creator.evaluate("""(n) => {
      const input = document.querySelector('.chat-form .chat-input');
      for (let i = 0; i < n; i += 1) { input.value = `burst ${i}`; input.form.requestSubmit(); }
    }""", BURST)
    # the creator's own rows come back over the same room's fan-out as the viewer's
    expect(creator.locator(".chat-message .chat-text")).to_have_count(BURST, timeout=15_000)
    echoed_at = creator.evaluate("() => performance.timeOrigin + performance.now()")
    held_until = viewer.evaluate("() => window.__held")
    assert echoed_at < held_until - 500, (
        f"the burst came back {echoed_at - held_until + 500:.0f} ms too late to wait in the viewer's "
        "queue: this run cannot tell batching from none")
    assert viewer.evaluate("() => window.__arrived") is True
    laid_out = layouts() - before
    texts = viewer.locator(".chat-message .chat-text").all_text_contents()
    assert texts == [f"burst {i}" for i in range(BURST)]
    assert laid_out < BURST / 2, f"{laid_out} layouts for {BURST} messages"
