"""A live stream's life through the gateway, with the real nginx-rtmp ingest and ffmpeg as the encoder:
rotating the key drops the live publish; one creator lives on two channels at once and rotating one
channel's key drops only that channel's publish; End stream goes ENDING -> ARCHIVED with a VOD that ffprobe
reads; an encoder that reconnects inside the reconnect window continues the same stream, one that
comes back after it starts a new one. No stream key ever reaches a log.

The e2e stack runs the streams service with RECONNECT_WINDOW_SECONDS=5 (conftest), so the
"after the window" case waits seconds, not the default 10."""

import copy
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from servicekit.testing import poll

from .helpers import Creator as BaseCreator
from .helpers import (assert_never_logged, create_channel, encoder, rtmp_url, segments_in_first_variant, stop,
                      vod_duration)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                                  reason="needs ffmpeg and ffprobe")]

WAIT = 30.0  # upper bound for anything that normally takes a second or two


class Creator(BaseCreator):
    def __init__(self, gateway: httpx.Client, stack):
        super().__init__(gateway, "lc")
        self.stack = stack
        self.all_keys: list[str] = []
        self.key = self._remember(gateway.get(f"/api/channels/{self.channel['id']}/stream-key", headers=self.auth))

    def another_channel(self) -> "Creator":
        """The same creator on a second channel of theirs (API.md Extensions: several per creator);
        the list of keys is shared, so either one's log check covers both."""
        other = copy.copy(self)
        other.channel = create_channel(self.gateway, self.auth, f"Second of {self.channel['slug']}")
        other.key = other._remember(self.gateway.get(f"/api/channels/{other.channel['id']}/stream-key",
                                                     headers=self.auth))
        return other

    def _remember(self, r: httpx.Response) -> str:
        assert r.status_code == 200, r.text
        key = r.json()["streamKey"]
        self.all_keys.append(key)
        return key

    def rotate_key(self) -> str:
        self.key = self._remember(self.gateway.post(f"/api/channels/{self.channel['id']}/stream-key/rotate",
                                                    headers=self.auth))
        return self.key

    def encoder(self, key: str | None = None, seconds: int = 60, picture: str = "testsrc") -> subprocess.Popen:
        """ffmpeg publishing a test pattern (`picture`: a lavfi source such as `color=c=red`)."""
        return encoder(rtmp_url(self.stack, key or self.key), seconds=seconds, picture=picture)

    def assert_keys_never_logged(self) -> None:
        assert_never_logged(self.stack, self.all_keys)
        data = self.stack.config.data_dir
        names = [p.name for p in (data / "hls").rglob("*")] + [p.name for p in (data / "vod").rglob("*")]
        assert not any(key in name for key in self.all_keys for name in names)


def _exits_within(encoder: subprocess.Popen, seconds: float) -> int | None:
    try:
        return encoder.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def test_rotating_the_key_drops_the_live_publish(gateway, stack):
    creator = Creator(gateway, stack)
    stream_id = creator.go_live()
    old_key = creator.key
    encoder = creator.encoder()
    try:
        creator.wait_live(stream_id)
        new_key = creator.rotate_key()
        assert new_key != old_key
        # the media gateway drops the publish at once (control module); on_update would within 5 s
        assert _exits_within(encoder, 15) is not None, "the publish with the rotated key is still running"
    finally:
        stop(encoder)

    # the old key is refused from now on; the new one is accepted
    started = time.monotonic()
    refused = creator.encoder(old_key, seconds=15)
    try:
        assert _exits_within(refused, 10) not in (None, 0), "the rotated key was accepted again"
        assert time.monotonic() - started < 10
    finally:
        stop(refused)
    accepted = creator.encoder(new_key)
    try:
        live = creator.wait_live()
        assert live["channelId"] == creator.channel["id"]
        assert accepted.poll() is None
    finally:
        stop(accepted)
    creator.assert_keys_never_logged()


def test_one_creator_lives_on_two_channels_and_rotating_one_key_drops_only_that_one(gateway, stack):
    first = Creator(gateway, stack)
    second = first.another_channel()
    assert second.channel["ownerId"] == first.channel["ownerId"] and second.channel["id"] != first.channel["id"]
    assert second.key != first.key
    one, two = first.go_live(), second.go_live()
    assert one != two
    encoders = [first.encoder(), second.encoder()]
    try:
        assert first.wait_live(one)["channelId"] == first.channel["id"]
        assert second.wait_live(two)["channelId"] == second.channel["id"]

        # the creator's own list shows both live, each with its own stream
        def both_live():
            r = gateway.get("/api/channels", params={"owner": "me"}, headers=first.auth)
            assert r.status_code == 200, r.text
            live = {c["id"]: c["liveStreamId"] for c in r.json()["items"] if c["isLive"]}
            return live == {first.channel["id"]: one, second.channel["id"]: two}
        poll("both channels live in ?owner=me", both_live, WAIT)

        second.rotate_key()
        assert _exits_within(encoders[1], 15) is not None, "the second channel's publish outlived its rotated key"
        # the first channel's publish and stream go on
        time.sleep(2)
        assert encoders[0].poll() is None
        assert first.stream(one)["status"] == "LIVE"
    finally:
        for encoder in encoders:
            stop(encoder)
    first.assert_keys_never_logged()


def test_end_stream_archives_it_with_a_vod_ffprobe_reads(gateway, stack):
    creator = Creator(gateway, stack)
    stream_id = creator.go_live()
    encoder = creator.encoder()
    try:
        live = creator.wait_live(stream_id)
        poll("a first segment of the source rendition", lambda: segments_in_first_variant(gateway, live["hlsUrl"]))
        time.sleep(3)  # a few seconds on air, so the recording has something in it
        r = gateway.post(f"/api/streams/{stream_id}/end", headers=creator.auth)
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "ENDING"
        # End drops the ingest: the encoder is disconnected by the server
        assert _exits_within(encoder, 15) is not None, "the ended stream's encoder is still publishing"
    finally:
        stop(encoder)

    archived = creator.wait_archived(stream_id)
    assert archived["isArchived"] is True and archived["vodUrl"], archived
    assert archived["endTime"] and archived["duration"] >= 3, archived
    assert vod_duration(gateway, archived["vodUrl"]) >= 3

    page = gateway.get(f"/api/channels/{creator.channel['slug']}").json()
    assert page["isLive"] is False
    vods = poll("the VOD in the channel's list", lambda: [
        v for v in gateway.get(f"/api/channels/{creator.channel['id']}/vod").json()["items"] if v["id"] == stream_id])
    assert vods[0]["vodUrl"] == archived["vodUrl"]
    creator.assert_keys_never_logged()


def test_a_reconnect_inside_the_window_keeps_the_stream(gateway, stack):
    creator = Creator(gateway, stack)
    stream_id = creator.go_live()
    first = creator.encoder()
    try:
        before = creator.wait_live(stream_id)
    finally:
        first.kill()  # the encoder's connection drops, as when OBS loses the network
        first.wait(10)
    second = creator.encoder()
    try:
        # the new connection is a new ingest session with its own playlist; the stream carries on
        after = poll("the stream switching to the new connection's playlist",
                      lambda: (s := creator.stream(stream_id))["hlsUrl"] != before["hlsUrl"] and s)
        assert after["status"] == "LIVE"
        assert after["startTime"] == before["startTime"]
        # still the channel's one LIVE stream once the window has passed
        time.sleep(6)
        assert [s["id"] for s in creator.live_streams()] == [stream_id]
        assert creator.stream(stream_id)["status"] == "LIVE"
    finally:
        stop(second)
    creator.assert_keys_never_logged()


def _colour_at(vod: Path, seconds: float) -> tuple[int, int, int]:
    """The mean colour of the VOD's frame at `seconds` (scaled to one pixel)."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", str(seconds), "-i", str(vod),
                          "-frames:v", "1", "-vf", "scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, timeout=30, check=True).stdout
    return out[0], out[1], out[2]


def test_a_reconnected_stream_is_archived_with_one_vod_of_both_parts(gateway, stack, tmp_path):
    """Two encoder connections inside the window (red for 6 s, then blue for 6 s): the VOD plays
    both, the first one first."""
    part_seconds = 6
    creator = Creator(gateway, stack)
    stream_id = creator.go_live()
    first = creator.encoder(seconds=part_seconds, picture="color=c=red")
    try:
        before = creator.wait_live(stream_id)
        assert _exits_within(first, WAIT) == 0, "the first part's encoder did not finish"
    finally:
        stop(first)
    second = creator.encoder(seconds=part_seconds, picture="color=c=blue")
    try:
        poll("the stream switching to the second connection",
             lambda: creator.stream(stream_id)["hlsUrl"] not in (None, before["hlsUrl"]))
        assert _exits_within(second, WAIT) == 0, "the second part's encoder did not finish"
    finally:
        stop(second)

    # the window (5 s) closes, both recordings come in, the media gateway joins them
    archived = creator.wait_archived(stream_id, timeout=90)
    assert archived["vodUrl"] and archived["isArchived"] is True, archived
    vod = gateway.get(archived["vodUrl"])
    assert vod.status_code == 200 and vod.headers["content-type"].startswith("video/mp4")
    path = tmp_path / "vod.mp4"
    path.write_bytes(vod.content)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1",
                            str(path)], capture_output=True, timeout=30, check=True)
    duration = float(probe.stdout)
    # about the sum of both parts (each recording may lose a fraction of a second at its edges);
    # one part alone would be half of it
    assert abs(duration - 2 * part_seconds) <= 1.5, duration
    red, blue = _colour_at(path, 0.3), _colour_at(path, duration - 0.5)
    assert red[0] > 150 and red[2] < 100, f"the VOD does not start with the first part: {red}"
    assert blue[2] > 150 and blue[0] < 100, f"the VOD does not end with the second part: {blue}"
    creator.assert_keys_never_logged()


def test_a_reconnect_after_the_window_starts_a_new_stream(gateway, stack):
    creator = Creator(gateway, stack)
    first_id = creator.go_live()
    first = creator.encoder()
    try:
        creator.wait_live(first_id)
    finally:
        first.kill()
        first.wait(10)
    # the window (5 s) passes without the encoder: the stream ends
    ended = poll("the stream ending after the window", lambda: (s := creator.stream(first_id))["status"]
                  in ("ENDING", "ARCHIVED") and s, timeout=WAIT)
    assert ended["endTime"]
    second = creator.encoder()
    try:
        new = creator.wait_live()
        assert new["id"] != first_id
        assert creator.stream(first_id)["status"] in ("ENDING", "ARCHIVED")
    finally:
        stop(second)
    creator.assert_keys_never_logged()
