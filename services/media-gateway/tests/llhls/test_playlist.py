"""The LL-HLS playlist writer: part numbering, the preload hint, program date time, the window, and
the answers to blocking reloads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from media_gateway.llhls.playlist import MediaPlaylist, Reload

T0 = datetime(2026, 12, 3, 17, 0, 0, 250_000, tzinfo=UTC)
PART = 1 / 3


def feed(playlist: MediaPlaylist, parts: int, start: int = 0) -> list[tuple[int, int]]:
    """`parts` parts of 1/3 s, a key frame every third (1 s GOP), timed from T0."""
    return [playlist.add_part(PART, (start + i) % 3 == 0, T0 + timedelta(seconds=(start + i) * PART))
            for i in range(parts)]


def tags(text: str, name: str) -> list[str]:
    return [line.split(":", 1)[1] for line in text.splitlines() if line.startswith(f"#{name}:")]


def test_parts_are_numbered_within_their_segment_and_segments_start_on_key_frames():
    playlist = MediaPlaylist()
    assert feed(playlist, 7) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
    text = playlist.render()
    assert tags(text, "EXT-X-PART")[:4] == [
        'DURATION=0.33333,URI="part-0.0.m4s",INDEPENDENT=YES', 'DURATION=0.33333,URI="part-0.1.m4s"',
        'DURATION=0.33333,URI="part-0.2.m4s"', 'DURATION=0.33333,URI="part-1.0.m4s",INDEPENDENT=YES']
    # whole segments for players without LL-HLS: the two complete ones, each 1 s
    assert re.findall(r"#EXTINF:([\d.]+),\n(seg-\d+\.m4s)", text) == [("1.00000", "seg-0.m4s"), ("1.00000", "seg-1.m4s")]


def test_a_segment_must_start_with_an_independent_part():
    playlist = MediaPlaylist()
    with pytest.raises(ValueError):
        playlist.add_part(PART, False, T0)


def test_the_preload_hint_names_the_next_part_and_goes_at_the_end():
    playlist = MediaPlaylist()
    feed(playlist, 4)
    text = playlist.render()
    assert text.splitlines()[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-1.1.m4s"'
    assert playlist.next_part() == (1, 1)


def test_server_control_and_part_inf_advertise_blocking_reload_and_hold_back():
    text = _rendered_after(3)
    assert tags(text, "EXT-X-SERVER-CONTROL") == ["CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.000"]
    assert tags(text, "EXT-X-PART-INF") == ["PART-TARGET=0.33333"]
    assert tags(text, "EXT-X-VERSION") == ["9"]
    assert tags(text, "EXT-X-TARGETDURATION") == ["1"]
    assert tags(text, "EXT-X-MAP") == ['URI="init.mp4"']


def _rendered_after(parts: int) -> str:
    playlist = MediaPlaylist()
    feed(playlist, parts)
    return playlist.render()


def test_every_segment_carries_the_wall_clock_of_its_first_frame():
    playlist = MediaPlaylist()
    feed(playlist, 9)
    assert tags(playlist.render(), "EXT-X-PROGRAM-DATE-TIME") == [
        "2026-12-03T17:00:00.250Z", "2026-12-03T17:00:01.250Z", "2026-12-03T17:00:02.250Z"]


def test_the_window_drops_old_segments_and_parts_of_older_segments():
    playlist = MediaPlaylist(window=3, part_segments=2)
    feed(playlist, 3 * 10 + 1)  # segments 0..9 complete, 10 open with one part
    text = playlist.render()
    assert tags(text, "EXT-X-MEDIA-SEQUENCE") == ["7"]
    assert re.findall(r"seg-(\d+)\.m4s", text) == ["7", "8", "9"]
    # parts only for the last two complete segments and the open one
    assert sorted({int(m) for m in re.findall(r'URI="part-(\d+)\.', text)}) == [8, 9, 10]
    assert playlist.find_part(6, 0) is None and playlist.find_part(10, 0) is not None


def test_blocking_reload_answers_ready_wait_or_too_far():
    playlist = MediaPlaylist()
    feed(playlist, 4)  # segment 0 complete, segment 1 has part 0
    assert playlist.wants(1, 0) is Reload.READY
    assert playlist.wants(1, 1) is Reload.WAIT  # the next part: held until it exists
    assert playlist.wants(1) is Reload.WAIT  # segment 1 not complete yet
    assert playlist.wants(0) is Reload.READY
    assert playlist.wants(3, 0) is Reload.WAIT  # two segments ahead: still allowed
    assert playlist.wants(4, 0) is Reload.TOO_FAR
    feed(playlist, 1, start=4)
    assert playlist.wants(1, 1) is Reload.READY


def test_a_part_past_a_closed_segment_is_the_first_part_of_the_next():
    playlist = MediaPlaylist()
    feed(playlist, 3)  # segment 0 has parts 0..2, still open
    assert playlist.wants(0, 3) is Reload.WAIT
    feed(playlist, 1, start=3)  # closes segment 0, opens 1
    assert playlist.wants(0, 3) is Reload.READY


def test_an_ended_playlist_lists_every_segment_whole_and_answers_at_once():
    playlist = MediaPlaylist()
    feed(playlist, 5)
    playlist.end()
    text = playlist.render()
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    assert "#EXT-X-PRELOAD-HINT" not in text and "#EXT-X-PART:" not in text
    assert re.findall(r"seg-(\d+)\.m4s", text) == ["0", "1"]
    assert playlist.wants(2, 0) is Reload.READY
    with pytest.raises(RuntimeError):
        playlist.add_part(PART, True, T0)


def test_a_restarted_encoder_opens_a_segment_after_a_discontinuity_with_its_own_init_section():
    playlist = MediaPlaylist(window=3)
    feed(playlist, 4)  # segment 0 complete, segment 1 open with one part
    playlist.restart("init-1.mp4")
    assert playlist.next_part() == (2, 0)
    with pytest.raises(ValueError):
        playlist.add_part(PART, False, T0)  # the new output starts on a key frame or not at all
    assert playlist.add_part(PART, True, T0 + timedelta(seconds=5)) == (2, 0)
    text = playlist.render()
    body = text.split("#EXT-X-PROGRAM-DATE-TIME", 1)[1]
    assert tags(text, "EXT-X-MAP")[0] == 'URI="init.mp4"'
    # the discontinuity and the new map come before the new segment's first part
    assert re.search(r'seg-1\.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init-1\.mp4"\n#EXT-X-PROGRAM-DATE-TIME:[^\n]+\n'
                     r'#EXT-X-PART:DURATION=0\.33333,URI="part-2\.0\.m4s",INDEPENDENT=YES', body), text
    assert "#EXT-X-DISCONTINUITY-SEQUENCE" not in text
    # once the segment with the discontinuity leaves the window, the sequence counts it
    feed(playlist, 3 * 5, start=3)
    text = playlist.render()
    assert tags(text, "EXT-X-DISCONTINUITY-SEQUENCE") == ["1"] and "#EXT-X-DISCONTINUITY\n" not in text
    assert tags(text, "EXT-X-MAP") == ['URI="init-1.mp4"']


def test_a_full_segment_hints_the_first_part_of_the_next():
    """After a segment's worth of parts the next one starts a segment (on the next key frame):
    hinting `part-0.3` would name a part that never exists, and a player (or the cache) asking
    for it gets a 404; `part-1.0` comes."""
    playlist = MediaPlaylist()
    feed(playlist, 3)
    assert playlist.next_part() == (1, 0)
    assert feed(playlist, 1, start=3) == [(1, 0)]
    assert playlist.next_part() == (1, 1)


def test_a_late_key_frame_still_arrives_as_the_hinted_part():
    """A key frame later than the segment target: the hinted first part of the next segment still
    comes, only after one more part of the open one."""
    playlist = MediaPlaylist()
    feed(playlist, 3)
    assert playlist.next_part() == (1, 0)
    assert playlist.add_part(PART, False, T0 + timedelta(seconds=1)) == (0, 3)
    assert playlist.next_part() == (1, 0)
    assert playlist.add_part(PART, True, T0 + timedelta(seconds=4 / 3)) == (1, 0)
