"""Chat replay on a VOD, through the gateway with the whole stack: ffmpeg publishes to the real
nginx-rtmp ingest, a viewer chats while the stream is live (one message early, one late, one
deleted), the creator ends it and the recording is archived. Then the replay windows answer
through the gateway (offsets from the stream's start, oldest first, the deleted message never,
bad windows 4xx problem+json), and in Debian's Chromium the VOD page plays the chat beside the
video in step with it: a message appears when the video reaches it, a seek shows the messages of
the new position and drops what belongs elsewhere, the deleted message never shows."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import datetime

import pytest
from playwright.sync_api import expect
from servicekit.testing import poll

from .common import log_in
from ..helpers import create_channel, encoder, gateway_client, register, rtmp_url, stop, stream_key

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]

LATE_AT = 12.0  # seconds into the stream the late message is sent
ON_AIR = 18.0  # the stream's length


def _seconds_since(iso: str) -> float:
    return time.time() - datetime.fromisoformat(iso).timestamp()


@pytest.fixture(scope="module")
def replay_vod(stack) -> dict:
    """An archived stream whose chat holds `early`, `late` and a deleted message -> their ids,
    the stream, the channel."""
    with gateway_client(stack) as gateway:
        creator, viewer = register(gateway, "rpc")["auth"], register(gateway, "rpv")["auth"]
        channel = create_channel(gateway, creator, f"Replay {uuid.uuid4().hex[:6]}")
        key = stream_key(gateway, channel["id"], creator)
        publisher = encoder(rtmp_url(stack, key), seconds=int(ON_AIR) + 30)
        try:
            live_id = poll("the channel going live", lambda: gateway.get(f"/api/channels/{channel['slug']}").json()
                           .get("liveStreamId"))
            stream = gateway.get(f"/api/streams/{live_id}").json()
            assert stream["status"] == "LIVE" and stream["startTime"], stream

            def say(content: str) -> dict:
                # chat learns the stream is live from stream.started: until then a message has no stream
                r = poll(f"chat to take {content!r} into the stream", lambda: (
                    r := gateway.post(f"/api/streams/{live_id}/messages", json={"content": content}, headers=viewer)
                ).status_code == 201 and r.json()["streamId"] == live_id and r, timeout=15)
                return r.json()

            early = say("early bird says hi")
            time.sleep(max(0.0, LATE_AT - _seconds_since(stream["startTime"])))
            late = say("late to the party")
            gone = say("this one was deleted")
            assert gateway.delete(f"/api/messages/{gone['id']}", headers=viewer).status_code == 204
            time.sleep(max(0.0, ON_AIR - _seconds_since(stream["startTime"])))
            assert gateway.post(f"/api/streams/{live_id}/end", headers=creator).status_code == 202
        finally:
            stop(publisher)
        archived = poll("the recording archived", lambda: (
            s := gateway.get(f"/api/streams/{live_id}").json())["status"] == "ARCHIVED" and s["vodUrl"] and s,
            timeout=90, every=0.5)
    return {"stream": archived, "channel": channel, "early": early, "late": late, "gone": gone}


def test_replay_windows_through_the_gateway(gateway, replay_vod):
    stream, early, late = replay_vod["stream"], replay_vod["early"], replay_vod["late"]
    url = f"/api/streams/{stream['id']}/messages"
    whole = gateway.get(url, params={"fromOffset": 0, "toOffset": 600})
    assert whole.status_code == 200, whole.text
    items = whole.json()["items"]
    assert [m["id"] for m in items] == [early["id"], late["id"]]  # oldest first, the deleted one left out
    start = datetime.fromisoformat(stream["startTime"])
    for item in items:
        expected = (datetime.fromisoformat(item["createdAt"]) - start).total_seconds()
        assert item["offsetSeconds"] == pytest.approx(max(0.0, expected), abs=0.001)
    assert items[1]["offsetSeconds"] >= LATE_AT > items[0]["offsetSeconds"]

    # a window around the late message only
    around = gateway.get(url, params={"fromOffset": LATE_AT - 1, "toOffset": ON_AIR}).json()["items"]
    assert [m["id"] for m in around] == [late["id"]]

    for params in ({"fromOffset": 5}, {"fromOffset": -1, "toOffset": 5}, {"fromOffset": "x", "toOffset": 5},
                   {"fromOffset": 9, "toOffset": 3}, {"fromOffset": 0, "toOffset": 601}):
        r = gateway.get(url, params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = gateway.get(f"/api/streams/{uuid.uuid4()}/messages", params={"fromOffset": 0, "toOffset": 5})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def _set_time(video, seconds: float, *, pause: bool = False) -> None:
    video.evaluate("(v, [t, pause]) => { if (pause) v.pause(); v.currentTime = t; }", [seconds, pause])


def test_vod_page_plays_the_chat_in_step_and_follows_seeks(new_page, replay_vod, shot):
    stream, channel = replay_vod["stream"], replay_vod["channel"]
    early_at, late_at = replay_vod["early"], replay_vod["late"]
    page = new_page()
    page.goto(f"/streams/{channel['slug']}?vod={stream['id']}")
    expect(page.get_by_role("heading", name="Chat replay")).to_be_visible()
    log = page.get_by_role("log", name="Chat replay messages")
    video = page.locator("video")
    early, late = log.get_by_text(early_at["content"]), log.get_by_text(late_at["content"])
    gone = log.get_by_text(replay_vod["gone"]["content"])

    # playing from the start: the early message appears once the video reaches it, the late one not yet
    expect(early).to_be_visible(timeout=30_000)
    assert video.evaluate("v => v.currentTime") < LATE_AT - 2
    expect(late).to_have_count(0)
    # each line says how far into the broadcast it was said
    said_at = int(round(max(0.0, _offset(stream, early_at)), 3))
    expect(log.locator(".chat-message", has_text=early_at["content"]).locator("time")).to_have_text(f"0:{said_at:02d}")
    shot(page, "vod-chat-replay-start", full_page=False)

    # a seek past the late message: it shows at once, the deleted one never
    _set_time(video, LATE_AT + 2)
    expect(late).to_be_visible(timeout=10_000)
    expect(gone).to_have_count(0)
    shot(page, "vod-chat-replay-after-seek", full_page=False)

    # back to the very start, paused: what belongs later is dropped, nothing was said yet
    _set_time(video, 0, pause=True)
    expect(log.locator(".chat-message")).to_have_count(0, timeout=10_000)
    expect(page.get_by_text("No chat at this point of the broadcast.")).to_be_visible()
    # playing again brings the early message back, in step
    video.evaluate("v => v.play()")
    expect(early).to_be_visible(timeout=30_000)
    expect(late).to_have_count(0)
    expect(gone).to_have_count(0)



def test_a_viewer_clips_the_recording_up_to_the_playhead(new_page, replay_vod, make_user, gateway):
    """The stream page's Clip button on a recording: the clip is of that stream, and the clip page
    takes over."""
    stream, channel = replay_vod["stream"], replay_vod["channel"]
    viewer = make_user()
    page = new_page()
    log_in(page, viewer)
    page.goto(f"/streams/{channel['slug']}?vod={stream['id']}")
    _set_time(page.locator("video"), LATE_AT, pause=True)
    with page.expect_request(lambda r: r.url.endswith("/api/clips") and r.method == "POST") as asked:
        page.get_by_role("button", name="Clip", exact=True).click()
    # the 30 s before the playhead, from the start when the playhead is nearer than that
    assert asked.value.post_data_json == {"streamId": stream["id"], "durationSeconds": 30, "startSeconds": 0}
    page.wait_for_url("**/clips/*")
    clip = gateway.get(f"/api/clips/{page.url.rsplit('/', 1)[1]}").json()
    assert (clip["streamId"], clip["creator"]) == (stream["id"], viewer["id"]), clip

def _offset(stream: dict, message: dict) -> float:
    return (datetime.fromisoformat(message["createdAt"]) - datetime.fromisoformat(stream["startTime"])).total_seconds()
