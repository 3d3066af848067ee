"""The clip page (/clips/<id>) in Chromium: a real clip (ffmpeg publishes, a viewer clips the live
window) plays in the page's player, the share control copies its link, and the channel page lists
it under Clips. A signed-in viewer makes one with the live page's Clip button."""

import shutil
import uuid

import pytest
from servicekit.testing import poll

from .common import log_in
from ..helpers import create_channel, live_stream

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]


@pytest.fixture
def ready_clip(gateway, stack, make_user):
    owner, viewer = make_user(), make_user()
    owner_auth = owner["auth"]
    channel = create_channel(gateway, owner_auth, f"Clip page {uuid.uuid4().hex[:6]}")
    with live_stream(gateway, stack, channel, owner_auth, "Clips", seconds=40, segments=6) as live:
        r = gateway.post("/api/clips", json={"streamId": live["id"], "durationSeconds": 5, "title": "Page clip"},
                         headers=viewer["auth"])
        assert r.status_code == 202, r.text
        clip = poll("the clip ready", lambda: (c := gateway.get(f"/api/clips/{r.json()['id']}").json())["status"]
                    != "processing" and c, timeout=60, every=0.5)
        assert clip["status"] == "ready", clip
    return clip, channel


def test_the_clip_page_plays_the_clip_and_offers_a_share_link(new_page, ready_clip, base_url):
    clip, channel = ready_clip
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page.goto(f"/clips/{clip['id']}")
    page.get_by_role("heading", name="Page clip").wait_for()
    video = page.locator("video")
    assert video.get_attribute("src").endswith(f"/clips/{clip['id']}.mp4")
    # it plays: decoded frames and the clock moving (bounded wait, no timing asserted)
    page.wait_for_function("() => { const v = document.querySelector('video');"
                           " return v && v.readyState >= 2 && v.currentTime > 0.5 && !v.error; }", timeout=20_000)
    share = page.get_by_role("button", name="Share")
    assert share.is_visible()
    share.click()
    status = page.locator(".share-status")
    status.filter(has_text="Link copied.").or_(status.filter(has_text=f"/clips/{clip['id']}")).wait_for()
    if "Link copied." in status.inner_text():
        assert page.evaluate("navigator.clipboard.readText()") == f"{base_url}/clips/{clip['id']}"
    assert page.get_by_role("link", name=f"From {channel['name']}").get_attribute("href") == f"/streams/{channel['slug']}"

    # the channel page lists it under Clips, linking to the clip page
    page.goto(f"/streams/{channel['slug']}")
    link = page.locator(f".clip-list a[href='/clips/{clip['id']}']")
    link.wait_for()
    assert "Page clip" in link.inner_text()


def test_an_unknown_clip_says_so(page):
    page.goto(f"/clips/{uuid.uuid4()}")
    page.get_by_role("heading", name="Clip not found").wait_for()


def test_a_viewer_clips_the_live_stream_with_the_pages_clip_button(new_page, gateway, stack, make_user, shot):
    owner, viewer = make_user(), make_user()
    channel = create_channel(gateway, owner["auth"], f"Clip button {uuid.uuid4().hex[:6]}")
    with live_stream(gateway, stack, channel, owner["auth"], "Clip me", seconds=60, segments=3) as live:
        page = new_page()
        log_in(page, viewer)
        page.goto(f"/streams/{channel['slug']}")
        button = page.get_by_role("button", name="Clip", exact=True)
        button.wait_for()  # visible only once the page shows the stream live
        shot(page, "stream-clip-button", full_page=False)
        button.click()
        page.wait_for_url("**/clips/*")
        clip_id = page.url.rsplit("/", 1)[1]
        clip = gateway.get(f"/api/clips/{clip_id}").json()
        assert (clip["streamId"], clip["durationSeconds"], clip["creator"]) == (live["id"], 30, viewer["id"]), clip
        # the page shows it being cut, then plays it
        page.wait_for_function("() => { const v = document.querySelector('video');"
                               " return v && v.src.endsWith('.mp4') && v.readyState >= 2 && !v.error; }",
                               timeout=60_000)
        assert page.locator("video").get_attribute("src").endswith(f"/clips/{clip_id}.mp4")
        shot(page, "clip-from-button", full_page=False)
        assert not page.locator(".clip-status").is_visible()  # no empty notice box under a ready clip


def test_a_signed_out_viewer_is_sent_to_sign_in_to_clip(page, gateway, stack, make_user):
    owner = make_user()
    channel = create_channel(gateway, owner["auth"], f"Clip anon {uuid.uuid4().hex[:6]}")
    with live_stream(gateway, stack, channel, owner["auth"], "Clip me", seconds=40):
        page.goto(f"/streams/{channel['slug']}")
        link = page.get_by_role("link", name="Clip", exact=True)
        link.wait_for()
        assert link.get_attribute("href") == f"/auth/login?next=%2Fstreams%2F{channel['slug']}"
