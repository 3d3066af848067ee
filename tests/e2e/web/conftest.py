"""Browser fixtures for the web client: Debian's Chromium (never a downloaded browser) driven by
Playwright's sync API against the whole stack behind the gateway (the parent conftest's `stack`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from ..helpers import PASSWORD as PASSWORD  # the web tests' logins type it
from ..helpers import register

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts"  # tests/e2e/artifacts/, git-ignored


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (never a downloaded browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def base_url(stack) -> str:
    return f"http://127.0.0.1:{stack.config.gateway_port}"


class PageProblems:
    """Uncaught exceptions and CSP violations seen by a page: a test fails on any of them."""

    def __init__(self):
        self.items: list[str] = []

    def watch(self, page):
        page.on("pageerror", lambda exc: self.items.append(f"uncaught: {exc}"))
        page.on("console", self._console)

    def _console(self, msg):
        if msg.type == "error" and "Content Security Policy" in msg.text:
            self.items.append(f"CSP: {msg.text}")


@pytest.fixture
def new_page(browser, base_url):
    """Factory: new_page(width=1280, height=800) -> a page in a fresh context (own storage)."""
    contexts = []
    problems = PageProblems()

    def make(width: int = 1280, height: int = 800):
        ctx = browser.new_context(viewport={"width": width, "height": height}, base_url=base_url)
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        problems.watch(page)
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not problems.items, problems.items


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def shot():
    """shot(page, "name"): a full-page PNG in tests/e2e/artifacts/ (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        if full_page:
            page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.fixture
def png_file(tmp_path) -> Path:
    path = tmp_path / "avatar.png"
    img = Image.new("RGB", (320, 320), (30, 144, 230))
    for x in range(80, 240):  # a white square, so a wrong crop or colour is visible in screenshots
        for y in range(80, 240):
            img.putpixel((x, y), (255, 255, 255))
    img.save(path, format="PNG")
    return path


@pytest.fixture
def make_user(gateway):
    """Register (and optionally onboard) a user over HTTP -> `helpers.register`'s answer (the
    credentials, tokens and `auth` headers) with its `displayName`."""

    def make(onboard: bool = True) -> dict:
        user = register(gateway, "w")
        name = user["username"]
        if onboard:
            r = gateway.post("/api/auth/onboard", json={"displayName": f"Web {name}", "bio": "Hello from the tests."},
                             headers=user["auth"])
            assert r.status_code == 200, r.text
        return {**user, "displayName": f"Web {name}" if onboard else name}

    return make
