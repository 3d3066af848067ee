"""A creator switches a channel's video provider from the dashboard in a real browser (Debian's
Chromium): after choosing Mux, the encoder card shows Mux's RTMPS URL, the key Mux issued (on the
local stand-in of its API, fake_providers.py), the SRT URL hidden like the key, and the playback URL."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..helpers import create_channel
from .common import log_in

pytestmark = [pytest.mark.e2e]


def test_switch_a_channel_to_mux_and_see_muxs_url_and_key(new_page, make_user, gateway, provider_api, shot):
    user = make_user()
    cid = create_channel(gateway, user["auth"], "Hosted Show")["id"]

    page = new_page()
    log_in(page, user)
    expect(page.get_by_role("heading", name="Encoder settings")).to_be_visible()
    expect(page.get_by_label("RTMP URL", exact=True)).to_have_value(re.compile(r"^rtmp://"))

    page.get_by_label("Video provider").select_option("mux")
    page.get_by_role("button", name="Switch", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Switch").click()
    expect(page.get_by_label("RTMPS URL", exact=True)).to_have_value("rtmps://global-live.mux.com:443/app")
    [stream] = provider_api.by_passthrough(cid)
    key = page.get_by_label("Stream key", exact=True)
    expect(key).to_have_value(stream["stream_key"])
    expect(key).to_have_attribute("type", "password")
    expect(page.get_by_label("SRT URL", exact=True)).to_have_attribute("type", "password")
    expect(page.get_by_label("Playback URL", exact=True)).to_have_value(
        f"https://stream.mux.com/{stream['playback_ids'][0]['id']}.m3u8")
    expect(page.get_by_role("status").filter(has_text="now goes to Mux")).to_be_visible()
    shot(page, "provider-mux")
    assert gateway.get(f"/api/channels/{cid}").json()["provider"] == "mux"
