"""External sign-in in a real browser: the login page shows a button per configured provider, the
button runs the whole flow at the real provider (tests/oidc/) and the browser ends signed in; a
provider account whose verified e-mail belongs to an existing account is linked once its owner
logs in with the password on the same page."""

import re
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from ..helpers import register

pytestmark = pytest.mark.e2e


def test_sign_in_button_runs_the_flow_and_signs_in(page, stack):
    page.goto("/auth/login")
    button = page.get_by_role("link", name="Continue with Test OIDC")
    expect(button).to_be_visible()
    assert button.get_attribute("href") == "/api/auth/oidc/test/login"
    button.click()
    # the provider signs "alice" in at once; a new platform user is not onboarded yet
    expect(page).to_have_url(re.compile(r"/onboarding$"))
    session = page.evaluate("JSON.parse(localStorage.getItem('sp.session'))")
    assert session["accessToken"] and session["refreshToken"]
    assert "#" not in page.url


def test_link_notice_then_password_login_links_the_account(page, stack, gateway, oidc_provider):
    account = f"oidcweb{uuid.uuid4().hex[:8]}"
    owner = register(gateway, "w", email=f"{account}@example.com")
    # the provider part of the flow over HTTP (it picks the account by login_hint), then the
    # browser opens where the callback sent it
    r = gateway.get("/api/auth/oidc/test/login")
    url = f"{r.headers['location']}&login_hint={account}"
    callback = f"{stack.config.gateway_url}/api/auth/oidc/test/callback"
    with httpx.Client(timeout=10) as browser:
        while not url.startswith(callback):
            url = str(httpx.URL(url).join(browser.get(url).headers["location"]))
    split = urlsplit(url)
    finish = gateway.get(f"{split.path}?{split.query}").headers["location"]
    assert "oidcLink=" in finish

    page.goto(finish)
    expect(page.get_by_test_id("oidc-link-notice")).to_be_visible()
    expect(page.get_by_test_id("external-signin")).to_be_empty()
    page.locator('form [name="login"]').fill(owner["username"])
    page.locator('form [name="password"]').fill(owner["password"])
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/onboarding$"))

    r = gateway.get("/api/auth/oidc/identities", headers=owner["auth"])
    assert [i["provider"] for i in r.json()] == ["test"]
