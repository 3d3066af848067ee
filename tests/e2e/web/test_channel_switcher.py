"""Several channels per creator in a real browser (Debian's Chromium) through the gateway: a creator
with one channel adds a second from the dashboard, lands on it, sees its own stream key, keeps it
across a reload (?channel= in the URL), switches between the two with the channel switcher, and
the channel and moderation pages show and save the chosen channel's own settings."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .common import log_in, own_channel

pytestmark = [pytest.mark.e2e]


def _api(gateway, user, method, path, **kw):
    r = gateway.request(method, path, headers=user["auth"], **kw)
    assert r.status_code < 300, r.text
    return r.json()


def _revealed_key(page) -> str:
    key = page.get_by_label("Stream key", exact=True)
    expect(key).not_to_have_value("")
    page.get_by_role("button", name="Show stream key").click()
    expect(key).to_have_attribute("type", "text")
    return key.input_value()


def test_create_a_second_channel_switch_to_it_and_see_its_own_key_and_settings(new_page, make_user, gateway, shot):
    page = new_page()
    user = make_user()
    first = own_channel(gateway, user, "Morning Show")
    first_key = _api(gateway, user, "GET", f"/api/channels/{first['id']}/stream-key")["streamKey"]

    log_in(page, user)
    # the only channel is chosen, and the URL says so
    switcher = page.get_by_role("combobox", name="Your channel")
    expect(switcher).to_have_value(first["id"])
    expect(page).to_have_url(re.compile(rf"/dashboard\?channel={first['id']}$"))
    assert _revealed_key(page) == first_key

    # a second channel from the dashboard
    page.get_by_role("link", name="New channel").click()
    expect(page.get_by_role("heading", name="Create another channel")).to_be_visible()
    expect(page.get_by_label("Channel name")).to_have_value("")
    shot(page, "new-channel")
    page.get_by_label("Channel name").fill("Evening Show")
    page.get_by_label("Category").fill("music")
    page.get_by_role("button", name="Create channel").click()
    expect(page.get_by_role("heading", name="Encoder settings")).to_be_visible()
    mine = _api(gateway, user, "GET", "/api/channels?owner=me")["items"]
    [second] = [c for c in mine if c["name"] == "Evening Show"]
    assert {c["id"] for c in mine} == {first["id"], second["id"]}
    second_key = _api(gateway, user, "GET", f"/api/channels/{second['id']}/stream-key")["streamKey"]
    assert second_key != first_key

    # the overview is the new channel's: its id in the URL, its name in the switcher, its own key
    expect(page).to_have_url(re.compile(rf"/dashboard\?channel={second['id']}$"))
    expect(switcher).to_have_value(second["id"])
    expect(switcher.locator("option")).to_have_text(["Morning Show", "Evening Show"])  # oldest first
    expect(page.locator(".channel-summary")).to_contain_text("Evening Show")
    assert _revealed_key(page) == second_key
    shot(page, "dashboard-second-channel")

    # a reload keeps the chosen channel
    page.reload()
    expect(page.get_by_role("heading", name="Encoder settings")).to_be_visible()
    expect(switcher).to_have_value(second["id"])
    assert _revealed_key(page) == second_key

    # moderation for the second channel: its settings are saved on it alone
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Moderation").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/moderation\?channel={second['id']}$"))
    expect(page.get_by_role("heading", name="Chat settings")).to_be_visible()
    page.get_by_label("Slow mode").select_option("30")
    page.get_by_label("Followers-only chat").check()
    page.get_by_role("button", name="Save chat settings").click()
    expect(page.get_by_text("Chat settings saved.")).to_be_visible()
    second_filters = _api(gateway, user, "GET", f"/api/channels/{second['id']}/filters")
    first_filters = _api(gateway, user, "GET", f"/api/channels/{first['id']}/filters")
    assert (second_filters["slowModeSeconds"], second_filters["followersOnly"]) == (30, True)
    assert (first_filters["slowModeSeconds"], first_filters["followersOnly"]) == (0, False)

    # switching to the first channel on this page shows the first channel's own settings
    switcher.select_option(first["id"])
    expect(page).to_have_url(re.compile(rf"/dashboard/moderation\?channel={first['id']}$"))
    expect(page.get_by_label("Slow mode")).to_have_value("0")
    expect(page.get_by_label("Followers-only chat")).not_to_be_checked()
    switcher.select_option(second["id"])
    expect(page.get_by_label("Slow mode")).to_have_value("30")
    expect(page.get_by_label("Followers-only chat")).to_be_checked()
    shot(page, "moderation-second-channel")

    # the channel page edits the chosen channel; the switcher follows a rename
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Channel").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/channel\?channel={second['id']}$"))
    expect(page.get_by_label("Channel name")).to_have_value("Evening Show")
    page.get_by_label("Channel name").fill("Late Evening Show")
    page.get_by_role("button", name="Save channel").click()
    expect(page.get_by_text("Your channel is saved.")).to_be_visible()
    expect(switcher.locator("option")).to_have_text(["Morning Show", "Late Evening Show"])
    assert _api(gateway, user, "GET", f"/api/channels/{first['id']}")["name"] == "Morning Show"
    switcher.select_option(first["id"])
    expect(page.get_by_label("Channel name")).to_have_value("Morning Show")
    shot(page, "channel-editor-first-channel")

    # back on the overview without ?channel= (the account menu's link): the last choice is kept
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(rf"/dashboard\?channel={first['id']}$"))
    assert _revealed_key(page) == first_key
    # an address naming a channel that is not the caller's falls back, saying so
    stranger = make_user()
    theirs = _api(gateway, stranger, "POST", "/api/channels", json={"name": "Not yours"})
    page.goto(f"/dashboard?channel={theirs['id']}")
    expect(page.get_by_text("The channel in the address is not one of yours")).to_be_visible()
    expect(switcher).to_have_value(first["id"])
    expect(page).to_have_url(re.compile(rf"/dashboard\?channel={first['id']}$"))

    # on a phone-sized screen the switcher wraps under the heading without a horizontal scroll
    phone = new_page(360, 740)
    log_in(phone, user)
    phone.goto(f"/dashboard/moderation?channel={second['id']}")
    expect(phone.get_by_role("combobox", name="Your channel")).to_have_value(second["id"])
    expect(phone.get_by_label("Slow mode")).to_have_value("30")
    assert phone.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    shot(phone, "mobile-moderation-second-channel")
