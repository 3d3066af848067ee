"""The live player's target latency in Chromium: the stream page's hls.js holds the viewer as far
behind the newest part as the origin's playlists say (EXT-X-SERVER-CONTROL's PART-HOLD-BACK), so
an origin with shorter parts (LLHLS_PART_SECONDS) gives its viewers a shorter delay. The page used
to fix the target at 1 s (hls.js's liveSyncDuration) whatever the playlist said."""

import re
import shutil
import time
import uuid

import pytest
from ..helpers import create_channel, live_stream

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]

# What the viewer's playlists advertise here: far enough from the 1 s the page used to fix that the
# two cannot be confused on a loaded machine, and allowed by RFC 8216bis (at least two parts).
HOLD_BACK = 2.5


def test_the_player_sits_as_far_behind_live_as_the_playlist_says(new_page, gateway, stack, make_user):
    owner = make_user()
    channel = create_channel(gateway, owner["auth"], f"Hold back {uuid.uuid4().hex[:6]}")
    with live_stream(gateway, stack, channel, owner["auth"], "Latency", seconds=60, segments=3):
        page = new_page()
        advertised: list[str] = []

        def advertise(route):
            # the origin's own playlist, only its PART-HOLD-BACK changed (blocking reloads included)
            response = route.fetch()
            body = response.text()
            if "PART-HOLD-BACK=" in body:
                advertised.append(route.request.url)
                body = re.sub(r"PART-HOLD-BACK=[\d.]+", f"PART-HOLD-BACK={HOLD_BACK}", body)
            route.fulfill(response=response, body=body)

        page.route(re.compile(r"\.m3u8(\?|$)"), advertise)
        page.goto(f"/streams/{channel['slug']}")
        behind = page.locator(".behind-live")
        page.wait_for_function("() => { const v = document.querySelector('video');"
                               " return v && v.readyState >= 2 && v.currentTime > 0 && !v.paused; }", timeout=30_000)
        # a few seconds of playing, then the delay hls.js reports, sampled while the clock moves
        time.sleep(4)
        samples, clock = [], []
        for _ in range(6):
            samples.append(float(behind.get_attribute("data-latency") or "nan"))
            clock.append(page.evaluate("() => document.querySelector('video').currentTime"))
            page.wait_for_timeout(500)
        page.unroute_all(behavior="ignoreErrors")  # blocking reloads in flight end with the page
        assert advertised, "no media playlist went through the route"
        assert clock[-1] - clock[0] > 1.5, f"the video did not play on: {clock}"
        assert min(samples) > HOLD_BACK - 0.5, f"behind live {samples} s with PART-HOLD-BACK={HOLD_BACK}"
