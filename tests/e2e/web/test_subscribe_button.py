"""Subscribing from the stream page in a real browser (Debian's Chromium) through the gateway: the
tier picker and Subscribe, the current tier with its renewal date, the subscriber badge on the
viewer's next chat message (the subscription event reached chat over NATS), Cancel, and the
owner's subscribers-only switch on the moderation page, which chat then applies."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..helpers import until
from .common import log_in, needs_chat, own_channel

pytestmark = [pytest.mark.e2e]


@needs_chat
def test_subscribe_from_the_stream_page_and_the_badge_in_chat(new_page, make_user, gateway, shot):
    owner, fan, stranger = make_user(), make_user(), make_user()
    channel = own_channel(gateway, owner)

    page = new_page()
    log_in(page, fan)
    page.goto(f"/streams/{channel['slug']}")
    panel = page.get_by_role("region", name="Subscribe")
    expect(panel).to_contain_text(f"Support {channel['name']} with a subscription")
    panel.get_by_label("Tier").select_option("VIP")
    panel.get_by_role("button", name="Subscribe").click()
    expect(panel).to_contain_text(re.compile(r"You subscribe at VIP\. Renews on \w+ \d+, \d{4}\."))
    expect(panel.get_by_role("button", name="Change tier")).to_be_disabled()  # VIP is already the tier
    expect(panel.get_by_role("button", name="Cancel subscription")).to_be_visible()
    sub = gateway.get(f"/api/channels/{channel['id']}/subscription", headers=fan["auth"]).json()
    assert (sub["tier"], sub["status"]) == ("VIP", "ACTIVE")

    # the fan's next message carries the subscriber badge with the tier. The event travels channels'
    # outbox -> NATS -> chat in milliseconds; on a busy test machine the test makes sure it arrived
    # (a message over REST) before typing, so the typed message is the one checked
    until("the fan's messages badged VIP", lambda: gateway.post(
        "/api/messages", json={"channelId": channel["id"], "content": "probe"}, headers=fan["auth"]),
        lambda r: r.status_code == 201 and "subscriber:VIP" in r.json()["user"]["badges"], timeout=10)
    log = page.get_by_role("log", name="Chat messages")
    box = page.get_by_role("textbox", name="Chat message")
    expect(box).to_be_enabled(timeout=15_000)
    # signed in on the socket (the edge has checked the token): the fan is counted in the room
    expect(page.locator(".chat-users-btn")).to_have_text("1 in chat", timeout=15_000)
    box.fill("hello as a subscriber")
    box.press("Enter")
    line = log.locator(".chat-message", has_text="hello as a subscriber")
    badge = line.locator(".chat-badge-subscriber")
    expect(badge).to_have_text("VIP sub", timeout=10_000)
    expect(badge).to_have_attribute("title", "VIP subscriber")
    expect(badge).to_have_attribute("data-tier", "VIP")
    shot(page, "subscribed-badge-in-chat")

    # a lower tier, then cancel: still subscribed until the renewal date
    panel.get_by_label("Tier").select_option("BASIC")
    panel.get_by_role("button", name="Change tier").click()
    expect(panel).to_contain_text("You subscribe at Basic.")
    panel.get_by_role("button", name="Cancel subscription").click()
    expect(panel).to_contain_text(re.compile(r"Your Basic subscription is cancelled\. It ends on "))
    expect(panel.get_by_role("button", name="Resume subscription")).to_be_visible()
    expect(panel.get_by_role("button", name="Cancel subscription")).to_be_hidden()
    assert gateway.get(f"/api/channels/{channel['id']}/subscription",
                       headers=fan["auth"]).json()["status"] == "CANCELLED"

    # the owner turns on subscribers-only where followers-only is, on the moderation page
    admin = new_page()
    log_in(admin, owner)
    admin.goto(f"/dashboard/moderation?channel={channel['id']}")
    admin.get_by_label("Subscribers-only chat").check()
    admin.get_by_role("button", name="Save chat settings").click()
    expect(admin.get_by_text("Chat settings saved.")).to_be_visible()
    assert gateway.get(f"/api/channels/{channel['id']}/filters", headers=owner["auth"]).json()["subscribersOnly"]
    admin.reload()
    expect(admin.get_by_label("Subscribers-only chat")).to_be_checked()

    # chat applies it: a viewer without a subscription is refused, the cancelled (still valid) fan is not
    refused = until("subscribers-only refusing the stranger", lambda: gateway.post(
        "/api/messages", json={"channelId": channel["id"], "content": "may I?"}, headers=stranger["auth"]),
        lambda r: r.status_code == 403, timeout=10)
    assert refused.json()["type"].endswith(":subscribers_only")
    box.fill("still here until the renewal date")
    box.press("Enter")
    expect(log.locator(".chat-message", has_text="still here until the renewal date")
           .locator(".chat-badge-subscriber")).to_have_text("Basic sub", timeout=10_000)

    # the channel's owner gets no subscribe panel on their own page
    admin.goto(f"/streams/{channel['slug']}")
    expect(admin.get_by_role("heading", level=1)).to_have_text(channel["name"])
    expect(admin.get_by_role("region", name="Subscribe")).to_have_count(0)
