"""Chat at the edges' own published address (CHAT_WS_URL): the gateway writes it into the page and
its CSP, and the page's chat socket goes there instead of /ws on the gateway; in Kubernetes an L4
Service (overlays/prod/chat-edge-public.yaml), here an edge of its own on loopback.

A second gateway renders the stack's config with CHAT_WS_URL set (the stack's own keeps /ws), and
a third edge process allows that gateway's origin, as ALLOWED_ORIGINS names the site's origin in a
deployment."""

from __future__ import annotations

import json
import os
import re
import sys
import time

import httpx
import pytest
from devstack.ports import free_port
from devstack.servers import Nginx
from devstack.stack import EDGE_NATS_USER, SERVICES
from playwright.sync_api import expect

from .common import needs_chat, own_channel

pytestmark = [pytest.mark.e2e, needs_chat]


@pytest.fixture(scope="module")
def published(stack):
    """(site URL, chat URL): a gateway whose pages use CHAT_WS_URL, and the edge behind that URL."""
    c = stack.config
    edge_port, site_port = free_port(), free_port()
    site = f"http://127.0.0.1:{site_port}"
    chat_url = f"ws://127.0.0.1:{edge_port}/ws"
    chat = next(s for s in SERVICES if s.name == "chat")
    env = {**stack.service_env(chat, nats_user=EDGE_NATS_USER), "SERVICE_NAME": "chat-edge-published",
           "EDGE_ID": "edge-published", "PORT": str(edge_port), "ALLOWED_ORIGINS": json.dumps([site])}
    edge = stack.sup.start("chat-edge-published", [sys.executable, "-m", chat.module, "edge"], env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{edge_port}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the published edge did not get ready"
        time.sleep(0.2)

    conf = (c.data_dir / "nginx" / "nginx.conf").read_text()
    prefix = c.data_dir / "nginx-published"
    for sub in ("logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(prefix / sub, 0o777)
    conf = conf.replace(f"listen 127.0.0.1:{c.gateway_port};", f"listen 127.0.0.1:{site_port};")
    conf = conf.replace(str(c.data_dir / "nginx") + "/", str(prefix) + "/")
    # the stack rendered CHAT_WS_URL as empty: the same lines with the address filled in
    conf, meta = re.subn(r"""(sub_filter '<meta name="chat-url" content="">' '<meta name="chat-url" content=")(">';)""",
                         rf"\g<1>{chat_url}\g<2>", conf)
    conf, csp = re.subn(r"""(sub_filter "connect-src 'self'" "connect-src 'self' )(";)""", rf"\g<1>{chat_url}\g<2>", conf)
    assert meta == csp == 1, "the gateway template no longer writes CHAT_WS_URL into the page"
    (prefix / "nginx.conf").write_text(conf)
    Nginx(prefix / "nginx.conf", prefix, site_port).start(stack.sup, "nginx-published")
    yield site, chat_url
    for child in [ch for ch in stack.sup.children if ch.name == "nginx-published"] + [edge]:
        stack.sup.stop(child)


def test_the_page_names_the_published_address_in_its_meta_tag_and_csp(published, base_url):
    site, chat_url = published
    html = httpx.get(f"{site}/streams/anything", timeout=10).text  # any route of the app is the page
    assert f'<meta name="chat-url" content="{chat_url}">' in html
    assert f"connect-src 'self' {chat_url};" in html
    # the stack's own gateway (CHAT_WS_URL empty) leaves the page as written: chat on /ws there
    plain = httpx.get(f"{base_url}/streams/anything", timeout=10).text
    assert '<meta name="chat-url" content="">' in plain and "connect-src 'self' ;" in plain


def test_a_viewer_chats_over_the_published_address(published, browser, make_user, gateway, shot):
    site, chat_url = published
    owner = make_user()
    channel = own_channel(gateway, owner)
    context = browser.new_context(base_url=site)
    try:
        page = context.new_page()
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"/streams/{channel['slug']}")
        chat = page.locator("section.chat")
        expect(chat).to_have_attribute("data-connection", "open", timeout=15_000)
        assert sockets == [chat_url], sockets  # not /ws on the site

        r = gateway.post("/api/messages", json={"channelId": channel["id"], "content": "over the L4 address"},
                         headers=owner["auth"])
        assert r.status_code == 201, r.text
        log = page.get_by_role("log", name="Chat messages")
        expect(log.get_by_text("over the L4 address", exact=True)).to_be_visible(timeout=10_000)
        shot(page, "chat-published-address", full_page=False)
    finally:
        context.close()
