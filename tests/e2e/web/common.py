"""What the browser tests share beyond the fixtures: signing in on the login page, a channel whose
address is its owner's username, and the mark for the tests that need the chat WebSocket."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from devstack.stack import SERVICES
from playwright.sync_api import expect

from ..helpers import create_channel

GATEWAY_TEMPLATE = (Path(__file__).resolve().parents[3] / "deploy" / "gateway" / "nginx.conf.template").read_text()
HAS_CHAT = (any(s.name.startswith("chat") for s in SERVICES)
            and re.search(r"location\s+(=\s*|\^~\s*)?/ws\b", GATEWAY_TEMPLATE) is not None)
needs_chat = pytest.mark.skipif(not HAS_CHAT, reason="the chat WebSocket is not wired yet: no chat service in devstack "
                                                     "SERVICES or no /ws location in the gateway template")


def log_in(page, user: dict) -> None:
    """`user` (a `make_user` answer) signs in on the login page and lands on the creator dashboard."""
    page.goto("/auth/login")
    page.locator('form [name="login"]').fill(user["username"])
    page.locator('form [name="password"]').fill(user["password"])
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="Creator dashboard")).to_be_visible()


def own_channel(gateway: httpx.Client, user: dict, name: str | None = None, **fields) -> dict:
    """A channel of `user`'s at the address of their username (`w_ab12` -> /streams/w-ab12)."""
    return create_channel(gateway, user["auth"], name or f"Ch {user['username']}",
                          slug=user["username"].replace("_", "-"), **fields)
