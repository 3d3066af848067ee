"""The clip page (/clips/<id>) in Chromium: a real clip (ffmpeg publishes, a viewer clips the live
window) plays in the page's player, the share control copies its link, and the channel page lists
it under Clips."""

import shutil
import uuid

import pytest
from servicekit.testing import poll

from ..helpers import create_channel, encoder, go_live, rtmp_url, segments_in_first_variant, stop, stream_key

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]


@pytest.fixture
def ready_clip(gateway, stack, make_user):
    owner, viewer = make_user(), make_user()
    owner_auth = owner["auth"]
    channel = create_channel(gateway, owner_auth, f"Clip page {uuid.uuid4().hex[:6]}")
    key = stream_key(gateway, channel["id"], owner_auth)
    stream_id = go_live(gateway, channel["id"], owner_auth, "Clips", timeout=30)["id"]
    publisher = encoder(rtmp_url(stack, key), seconds=40)
    try:
        live = poll("LIVE", lambda: (s := gateway.get(f"/api/streams/{stream_id}").json())["status"] == "LIVE" and s)
        poll("6 segments in the live window", lambda: segments_in_first_variant(gateway, live["hlsUrl"]) >= 6,
             timeout=60, every=0.5)
        r = gateway.post("/api/clips", json={"streamId": stream_id, "durationSeconds": 5, "title": "Page clip"},
                         headers=viewer["auth"])
        assert r.status_code == 202, r.text
        clip = poll("the clip ready", lambda: (c := gateway.get(f"/api/clips/{r.json()['id']}").json())["status"]
                    != "processing" and c, timeout=60, every=0.5)
        assert clip["status"] == "ready", clip
    finally:
        gateway.post(f"/api/streams/{stream_id}/end", headers=owner_auth)
        stop(publisher)
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
