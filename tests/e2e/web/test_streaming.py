"""The streaming experience in a real browser (Debian's Chromium) through the gateway: a creator
makes a channel, reveals and copies the stream key, ffmpeg publishes with it, a viewer in another
browser context watches (video time advances, a rendition can be chosen), the creator ends the
stream, the viewer's page goes offline by itself and the recording plays. Chat between two
browsers runs once the chat service is part of the devstack; the chat drawer on a phone-sized
screen and the creator's channel and moderation pages run in any case. The live player uses LL-HLS
(blocking reloads, parts), shows how far behind live it is, seeks back in the DVR window and takes a
paused or rewound viewer back to live."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid

import pytest
from playwright.sync_api import expect

from ..helpers import report_a_message
from .common import log_in, needs_chat, own_channel
from .conftest import PASSWORD

pytestmark = [pytest.mark.e2e]

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


LAYOUT_SHIFT_PROBE = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
}).observe({type: 'layout-shift', buffered: true});
"""


def _publish(rtmp_url: str, key: str, seconds: int = 90) -> subprocess.Popen:
    """A bounded test-pattern encoder; the caller kills it in `finally`."""
    return subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
         "-tune", "zerolatency", "-g", "30", "-c:a", "aac", "-f", "flv", f"{rtmp_url}/{key}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_playing(video, timeout: float = 30.0, advance: float = 1.5) -> float:
    """Wait until the video's currentTime has advanced by `advance` seconds while we watched."""
    deadline = time.monotonic() + timeout
    start = None
    now = 0.0
    while time.monotonic() < deadline:
        now = video.evaluate("v => v.currentTime")
        if start is None and now > 0:
            start = now
        if start is not None and now - start >= advance:
            return now
        time.sleep(0.25)
    raise AssertionError(f"video did not play: currentTime stayed at {now} (first seen {start})")


@needs_ffmpeg
def test_creator_goes_live_viewer_watches_then_vod_plays(new_page, base_url, stack, shot):
    creator = new_page()
    creator.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)

    # register and onboard through the UI
    name = f"cr_{uuid.uuid4().hex[:8]}"
    creator.goto("/auth/register")
    creator.get_by_label("Email").fill(f"{name}@example.com")
    creator.get_by_label("Username").fill(name)
    creator.get_by_label("Password", exact=True).fill(PASSWORD)
    creator.get_by_role("button", name="Create account").click()
    expect(creator).to_have_url(re.compile(r"/onboarding$"))
    creator.get_by_label("Display name").fill("Synth Person")
    creator.get_by_label("Bio").fill("Modular synths, live.")
    creator.get_by_role("button", name="Finish setup").click()

    # create the channel from the dashboard
    expect(creator.get_by_role("heading", name="Create your channel")).to_be_visible()
    shot(creator, "dashboard-create-channel")
    creator.get_by_label("Channel name").fill("Synth Jams")
    creator.get_by_label("Category").fill("music")
    creator.get_by_role("button", name="Create channel").click()
    expect(creator.get_by_role("heading", name="Encoder settings")).to_be_visible()
    slug = name.replace("_", "-")

    # the key is hidden until revealed; copy puts it on the clipboard
    key_input = creator.get_by_label("Stream key", exact=True)
    expect(key_input).to_have_attribute("type", "password")
    expect(key_input).not_to_have_value("")
    creator.get_by_role("button", name="Show stream key").click()
    expect(key_input).to_have_attribute("type", "text")
    key = key_input.input_value()
    assert len(key) >= 22
    creator.get_by_role("button", name="Copy stream key").click()
    expect(creator.get_by_text("Stream key copied to the clipboard.")).to_be_visible()
    assert creator.evaluate("navigator.clipboard.readText()") == key
    creator.get_by_role("button", name="Hide stream key").click()
    expect(key_input).to_have_attribute("type", "password")
    rtmp_url = creator.get_by_label("RTMP URL", exact=True).input_value()
    assert rtmp_url.startswith("rtmp://") and rtmp_url.endswith("/live")
    # SRT: the URL carries the key as its streamid, so it is hidden like the key
    srt_input = creator.get_by_label("SRT URL", exact=True)
    expect(srt_input).to_have_attribute("type", "password")
    assert srt_input.input_value() == f"srt://localhost:{stack.config.srt_port}?streamid={key}"

    creator.get_by_label("Title").fill("Patch cables at dawn")
    creator.get_by_role("button", name="Go live").click()
    expect(creator.locator(".status-badge")).to_have_text("Offline")
    expect(creator.get_by_text("Ready: start your encoder")).to_be_visible()
    shot(creator, "dashboard-ready")

    # a viewer waits on the offline page: it switches to the player by itself
    viewer = new_page()
    requested: list[str] = []
    viewer.on("request", lambda request: requested.append(request.url))
    viewer.goto(f"/streams/{slug}")
    expect(viewer.get_by_text("Synth Jams is offline")).to_be_visible()
    shot(viewer, "stream-offline-before")

    encoder = _publish(f"rtmp://127.0.0.1:{stack.config.rtmp_port}/live", key)
    try:
        expect(creator.locator(".status-badge")).to_have_text("Live", timeout=30_000)
        expect(creator.get_by_role("button", name="End stream")).to_be_visible()
        expect(creator.get_by_role("button", name="Go live")).to_be_hidden()

        expect(viewer.locator(".offline-panel")).to_be_hidden(timeout=15_000)
        expect(viewer.get_by_role("heading", name="Patch cables at dawn")).to_be_visible()
        expect(viewer.locator(".stream-meta .live-pill")).to_be_visible()
        video = viewer.locator("video")
        _wait_playing(video)

        # Low-Latency HLS: blocking playlist reloads for the next part, parts fetched as they come,
        # and how far behind live the picture is
        behind = viewer.locator(".behind-live")
        expect(behind).to_have_text(re.compile(r"^\d+\.\d s behind live$"), timeout=15_000)
        assert any("_HLS_msn=" in url and "_HLS_part=" in url for url in requested), requested[-10:]
        assert any(re.search(r"/part-\d+\.\d+\.m4s$", url) for url in requested), requested[-10:]
        shot(viewer, "stream-live-ll", full_page=False)
        # paused, the viewer falls behind and is offered the live edge; taking it plays from there
        go_live = viewer.get_by_role("button", name="Go to live")
        expect(go_live).to_be_hidden()
        video.evaluate("v => v.pause()")
        expect(go_live).to_be_visible(timeout=5_000)
        viewer.wait_for_timeout(2_500)
        shot(viewer, "stream-live-behind", full_page=False)
        go_live.click()
        # the button goes once the player plays within a second of its target latency again
        expect(go_live).to_be_hidden(timeout=10_000)
        _wait_playing(video, advance=1.0)
        assert float(behind.get_attribute("data-latency")) <= 2.5

        # DVR (a 20 s window in the e2e stack): back 10 s in the live stream, the readout grows and
        # stays there while it plays (hls.js does not take the viewer back by itself), Go to live returns
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and video.evaluate(
                "v => v.seekable.length ? v.currentTime - v.seekable.start(0) : 0") < 9:
            time.sleep(0.25)
        history = video.evaluate("v => v.currentTime - v.seekable.start(0)")
        assert history >= 9, history  # the playlist reaches further back than the 6 s live window
        before = float(behind.get_attribute("data-latency"))
        viewer.get_by_role("button", name="Back 10 seconds").click()
        expect(go_live).to_be_visible(timeout=5_000)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and float(behind.get_attribute("data-latency")) < before + 8:
            time.sleep(0.25)
        assert float(behind.get_attribute("data-latency")) >= before + 8, behind.text_content()
        _wait_playing(video, advance=2.0)  # several playlist reloads later, still behind and playing
        assert float(behind.get_attribute("data-latency")) >= before + 6, behind.text_content()
        shot(viewer, "stream-live-dvr", full_page=False)
        go_live.click()
        expect(go_live).to_be_hidden(timeout=10_000)
        _wait_playing(video, advance=1.0)
        assert float(behind.get_attribute("data-latency")) <= 2.5

        # every rendition is offered; choosing one switches to it
        quality = viewer.get_by_label("Quality")
        labels = quality.locator("option").all_text_contents()
        assert labels[0].startswith("Auto") and len(labels) >= 3, labels
        rendition = next(label for label in labels[1:] if re.fullmatch(r"\d+p", label))
        quality.select_option(label=rendition)
        height = int(rendition[:-1])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and video.evaluate("v => v.videoHeight") != height:
            time.sleep(0.25)
        assert video.evaluate("v => v.videoHeight") == height
        _wait_playing(video, advance=1.0)
        shot(viewer, "stream-live", full_page=False)
        shot(creator, "dashboard-live")

        # the directory lists the live channel first, with its viewer count
        home = new_page()
        home.goto("/")
        live_card = home.get_by_role("list", name="Live channels").get_by_role("link", name=re.compile("Patch cables at dawn"))
        expect(live_card).to_be_visible()
        expect(live_card).to_contain_text("viewer")
        shot(home, "home-live")
        home.context.close()

        # End stream (confirmed in a dialog): the viewer's page goes offline by itself
        creator.get_by_role("button", name="End stream").click()
        dialog = creator.get_by_role("dialog", name="End the stream?")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="End stream").click()
        expect(viewer.locator(".offline-panel")).to_be_visible(timeout=20_000)
        expect(viewer.get_by_text("Synth Jams is offline")).to_be_visible()
    finally:
        encoder.kill()
        encoder.wait(10)

    # the recording is listed and plays
    vod_link = viewer.get_by_role("region", name="Past broadcasts").get_by_role("link", name=re.compile("Patch cables at dawn"))
    expect(vod_link).to_be_visible(timeout=40_000)
    shot(viewer, "stream-offline-after")
    vod_link.click()
    expect(viewer).to_have_url(re.compile(r"\?vod="))
    expect(viewer.get_by_text("Past broadcast from")).to_be_visible()
    _wait_playing(viewer.locator("video"), advance=1.0)
    assert viewer.locator("video").evaluate("v => v.currentSrc").split("?")[0].endswith(".mp4")
    shot(viewer, "stream-vod", full_page=False)
    creator.goto("/dashboard")
    expect(creator.get_by_role("region", name="Past broadcasts").get_by_role("link", name=re.compile("Patch cables"))).to_be_visible()
    shot(creator, "dashboard-after")


@needs_chat
def test_chat_between_two_browsers_with_moderation(new_page, make_user, gateway, shot):
    owner = make_user()
    viewer_user = make_user()
    channel = own_channel(gateway, owner)

    creator = new_page()
    log_in(creator, owner)
    creator.goto(f"/streams/{channel['slug']}")
    viewer = new_page()
    viewer.context.add_init_script(LAYOUT_SHIFT_PROBE)
    log_in(viewer, viewer_user)
    viewer.goto(f"/streams/{channel['slug']}")

    def log(page):
        return page.get_by_role("log", name="Chat messages")

    for page in (creator, viewer):
        expect(page.get_by_role("textbox", name="Chat message")).to_be_enabled(timeout=15_000)
    viewer.wait_for_timeout(500)
    shift_before = viewer.evaluate("window.__cls")

    viewer.get_by_role("textbox", name="Chat message").fill("hello from the viewer")
    expect(creator.locator(".chat-typing")).to_contain_text("is typing", timeout=10_000)
    viewer.get_by_role("textbox", name="Chat message").press("Enter")
    expect(log(creator).get_by_text("hello from the viewer")).to_be_visible(timeout=10_000)
    expect(log(viewer).get_by_text("hello from the viewer")).to_be_visible()

    creator.get_by_role("textbox", name="Chat message").fill("welcome, friend")
    creator.get_by_role("button", name="Send").click()
    expect(log(viewer).get_by_text("welcome, friend")).to_be_visible(timeout=10_000)
    line = log(viewer).locator(".chat-message", has_text="welcome, friend")
    expect(line.locator(".chat-badge")).to_have_count(1)  # the creator's badge
    expect(line.locator("time")).to_have_attribute("datetime", re.compile(r"Z$"))
    assert viewer.evaluate("window.__cls") == shift_before  # messages arriving moved nothing on the page
    shot(viewer, "chat-viewer")

    # the owner deletes the viewer's message: it disappears for the viewer
    message = log(creator).locator(".chat-message", has_text="hello from the viewer")
    message.hover()
    message.get_by_role("button", name=re.compile("^Delete message")).click()
    expect(log(viewer).get_by_text("hello from the viewer")).to_have_count(0, timeout=10_000)
    expect(log(creator).get_by_text("hello from the viewer")).to_have_count(0)
    shot(creator, "chat-creator-after-delete")


def test_mobile_stream_page_has_a_chat_drawer(new_page, make_user, gateway, shot):
    owner = make_user()
    channel = own_channel(gateway, owner, description="Phone-sized test channel.")
    page = new_page(360, 740)
    page.goto(f"/streams/{channel['slug']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(channel["name"])
    expect(page.get_by_text(f"{channel['name']} is offline")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    drawer = page.locator("#chat-drawer")
    toggle = page.locator("button.chat-toggle")
    expect(toggle).to_have_accessible_name("Chat")
    expect(drawer).to_be_hidden()  # visibility: hidden while closed, so it is out of the tab order too
    shot(page, "mobile-stream")

    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(drawer).to_be_visible()
    expect(page.get_by_role("link", name="Log in to chat")).to_be_focused()  # anonymous: read-only
    deadline = time.monotonic() + 5  # the slide-in transition ends (wait_for_function would need unsafe-eval)
    while time.monotonic() < deadline and drawer.evaluate("el => getComputedStyle(el).transform") != "none":
        time.sleep(0.05)
    box = drawer.bounding_box()
    assert box and box["width"] <= 360 and box["y"] + box["height"] <= 740 + 1
    shot(page, "mobile-chat-drawer", full_page=False)
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(toggle).to_be_focused()
    toggle.click()
    page.get_by_role("button", name="Close chat").click()
    expect(drawer).to_be_hidden()

    # desktop: the chat is a column beside the player, no toggle
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(drawer).to_be_visible()
    expect(toggle).to_be_hidden()
    shot(page, "desktop-stream-offline", full_page=False)


def test_unknown_channel_shows_not_found(page):
    page.goto("/streams/no-such-channel-here")
    expect(page.get_by_role("heading", name="Channel not found")).to_be_visible()


def test_channel_editor_and_moderation_panel(new_page, make_user, gateway, png_file, tmp_path, shot):
    owner = make_user()
    other = make_user()
    channel = own_channel(gateway, owner)
    # a viewer reports a chat message before the filters below make the room followers-only
    report_a_message(gateway, channel, make_user())
    page = new_page()
    log_in(page, owner)

    # channel editor: banner with preview and errors, details saved
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Channel").click()
    expect(page.get_by_role("heading", name="Channel", exact=True)).to_be_visible()
    banner = page.get_by_label("Banner")
    fake = tmp_path / "notes.png"
    fake.write_text("not an image\n" * 10)
    banner.set_input_files(str(fake))
    expect(page.get_by_text("not a supported image")).to_be_visible()
    expect(banner).to_have_attribute("aria-invalid", "true")
    banner.set_input_files(str(png_file))
    expect(page.get_by_text("Banner updated.")).to_be_visible()
    expect(page.locator(".banner-preview img")).to_have_attribute("src", re.compile(r"^/media/"))
    expect(banner).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Description").fill("Now with a banner.")
    page.get_by_label("Tags").fill("synths, ambient")
    page.get_by_label("Address").fill("Bad Slug!")
    page.get_by_role("button", name="Save channel").click()
    expect(page.get_by_label("Address")).to_have_attribute("aria-invalid", "true")
    shot(page, "channel-editor-error")
    page.get_by_label("Address").fill(channel["slug"])
    page.get_by_role("button", name="Save channel").click()
    expect(page.get_by_text("Your channel is saved.")).to_be_visible()
    shot(page, "channel-editor")
    r = gateway.get(f"/api/channels/{channel['slug']}").json()
    assert r["description"] == "Now with a banner." and r["tags"] == ["synths", "ambient"] and r["banner"]

    # moderation: filters, a moderator and a timeout by user id
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Moderation").click()
    expect(page.get_by_role("heading", name="Chat settings")).to_be_visible()
    page.get_by_label("Banned words").fill("spoiler\nrefund")
    page.get_by_label("Filter profanity").check()
    page.get_by_label("Slow mode").select_option("10")
    page.get_by_label("Followers-only chat").check()
    page.get_by_role("button", name="Save chat settings").click()
    expect(page.get_by_text("Chat settings saved.")).to_be_visible()
    filters = gateway.get(f"/api/channels/{channel['id']}/filters", headers=owner["auth"]).json()
    assert filters == {"bannedWords": ["spoiler", "refund"], "profanityFilter": True, "slowModeSeconds": 10,
                       "followersOnly": True, "subscribersOnly": False}

    mods = page.get_by_role("region", name="Moderators")
    mods.get_by_label("Add a moderator").fill("no-such-user")
    mods.get_by_role("button", name="Add moderator").click()
    expect(mods.get_by_text("No user with that username or id.")).to_be_visible()
    mods.get_by_label("Add a moderator").fill("@" + other["username"])  # by name, as a person types it
    mods.get_by_role("button", name="Add moderator").click()
    expect(mods.get_by_role("button", name=re.compile("^Remove .+ as moderator$"))).to_be_visible(timeout=10_000)

    bans = page.get_by_role("region", name="Bans and timeouts")
    bans.get_by_label("Ban or time out").fill(other["user"]["id"])
    bans.get_by_label("Length").select_option("600")
    bans.get_by_label("Reason").fill("spam")
    bans.get_by_role("button", name="Apply").click()
    expect(bans.get_by_text("timed out until")).to_be_visible()
    shot(page, "moderation")
    bans.get_by_role("button", name=re.compile("^Lift the timeout")).click()
    expect(bans.get_by_text("Nobody is banned or timed out.")).to_be_visible()

    reports = page.get_by_role("region", name="Reports")
    expect(reports.get_by_text("spam link")).to_be_visible()
    expect(reports.get_by_text("buy followers here")).to_be_visible()  # the reported message, quoted
    reports.get_by_role("button", name="Resolve").click()
    expect(reports.get_by_text("Report resolved.")).to_be_visible()
    expect(reports.get_by_role("button", name="Reopen")).to_be_visible()

    page.reload()
    expect(page.get_by_label("Banned words")).to_have_value("spoiler\nrefund")
