"""The whole profile in the browser: the public profile page (/users/<name>) with its social links
and the Follow button and counts, the creator's links on the channel page, and the language setting
switching the pages between English and German (signed out: the browser's language)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from .common import log_in, own_channel

pytestmark = pytest.mark.e2e
REL = "noopener nofollow ugc"


def _unsafe_links(page, user_id: str):
    """The API refuses non-http(s) links (422), so to see the client refuse them too, its answer
    for this user gets a javascript: and a data: link slipped in, as a bad record would."""

    def handle(route):
        response = route.fetch()
        body = response.json()
        body["socialLinks"] = {**body["socialLinks"], "evil": "javascript:alert(1)", "data": "data:text/html,x"}
        route.fulfill(response=response, body=json.dumps(body))

    page.route(re.compile(rf".*/api/users/{user_id}$"), handle)


def _check_links(page, scope):
    links = scope.locator("a.social-link")
    expect(links).to_have_count(2)
    for i in range(2):
        expect(links.nth(i)).to_have_attribute("rel", REL)
        assert re.match(r"^https?://", links.nth(i).get_attribute("href"))
    assert scope.get_by_text("evil").count() == 0 and scope.get_by_text("data", exact=True).count() == 0
    assert page.locator('a[href^="javascript:"], a[href^="data:"]').count() == 0


def test_social_links_are_safe_on_profile_and_channel_page(new_page, make_user, gateway, shot):
    creator = make_user()
    r = gateway.put("/api/auth/profile", headers=creator["auth"], json={
        "socialLinks": {"site": "https://example.org/me", "blog": "http://example.com/blog"}})
    assert r.status_code == 200, r.text
    channel = own_channel(gateway, creator)

    page = new_page()
    _unsafe_links(page, creator["user"]["id"])
    _unsafe_links(page, creator["username"])
    page.goto(f"/users/{creator['username']}")
    expect(page.get_by_role("heading", name=creator["displayName"])).to_be_visible()
    _check_links(page, page.locator("main"))
    shot(page, "profile-public")

    page.goto(f"/streams/{channel['slug']}")
    card = page.locator(".creator-card")
    _check_links(page, card)
    shot(page, "profile-channel-links")


def test_follow_button_and_counts(new_page, make_user, shot):
    star, fan = make_user(), make_user()
    visitor = new_page()
    visitor.goto(f"/users/{star['username']}")
    expect(visitor.get_by_test_id("follower-count")).to_have_text("0")
    follow_link = visitor.get_by_role("link", name="Follow", exact=True)  # signed out: log in first
    expect(follow_link).to_have_attribute("href", re.compile(r"^/auth/login\?next="))

    page = new_page()
    log_in(page, fan)
    page.goto(f"/users/{star['username']}")
    button = page.get_by_role("button", name="Follow", exact=True)
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    following = page.get_by_role("button", name="Following", exact=True)
    expect(following).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("follower-count")).to_have_text("1")
    shot(page, "profile-following")

    page.reload()  # kept by the server, not just the page
    expect(page.get_by_test_id("follower-count")).to_have_text("1")
    page.goto(f"/users/{fan['username']}")
    expect(page.get_by_test_id("following-count")).to_have_text("1")
    expect(page.get_by_role("link", name="Edit profile", exact=True)).to_be_visible()  # one's own profile

    page.goto(f"/users/{star['username']}")
    page.get_by_role("button", name="Following", exact=True).click()
    expect(page.get_by_role("button", name="Follow", exact=True)).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("follower-count")).to_have_text("0")


def test_language_setting_switches_the_pages(browser, base_url, new_page, make_user, shot):
    user = make_user()
    page = new_page()
    log_in(page, user)
    page.goto("/dashboard/profile")
    expect(page.get_by_role("heading", name="Edit profile")).to_be_visible()
    page.get_by_label("Language").select_option("de")
    page.get_by_label("Notification e-mail").fill(f"alerts-{user['username']}@example.org")
    page.get_by_role("button", name="Save changes").click()
    # the page is drawn again in German, without a reload
    expect(page.get_by_role("heading", name="Profil bearbeiten")).to_be_visible()
    expect(page.get_by_role("button", name="Änderungen speichern")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Ihr Profil ist gespeichert.")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "de"
    shot(page, "profile-editor-de")

    page.reload()  # the setting is the user's: it holds after a reload
    expect(page.get_by_role("heading", name="Profil bearbeiten")).to_be_visible()
    expect(page.get_by_label("E-Mail für Benachrichtigungen")).to_have_value(f"alerts-{user['username']}@example.org")
    page.goto("/")
    expect(page.get_by_role("heading", name="Jetzt live")).to_be_visible()

    page.goto("/dashboard/profile")
    page.get_by_label("Sprache").select_option("en")
    page.get_by_role("button", name="Änderungen speichern").click()
    expect(page.get_by_role("heading", name="Edit profile")).to_be_visible()

    # signed out: the browser's language
    for locale, heading, login in (("de-DE", "Jetzt live", "Anmelden"), ("en-US", "Live now", "Log in")):
        ctx = browser.new_context(base_url=base_url, locale=locale)
        try:
            anon = ctx.new_page()
            anon.goto("/")
            expect(anon.get_by_role("heading", name=heading)).to_be_visible()
            expect(anon.locator("#account").get_by_role("link", name=login)).to_be_visible()
            if locale == "de-DE":
                shot(anon, "home-de")
        finally:
            ctx.close()
