"""The VOD rules on their own (streams/vod.py): which parts, in which order, when to wait."""

from datetime import UTC, datetime, timedelta

import pytest
from streams_service.streams.vod import Part, VodAction, in_order, plan_vod

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def part(session_id: str, minute: float | None, *, arrived: bool = True, url: str | None = "auto",
         duration: float = 60.0, joinable: bool = True) -> Part:
    return Part(session_id=session_id, connected_at=None if minute is None else T0 + timedelta(minutes=minute),
                arrived=arrived, vod_url=f"/vod/{session_id}.mp4" if url == "auto" and arrived else
                (None if url == "auto" else url), duration_seconds=duration, joinable=joinable)


def test_one_part_is_the_vod_as_it_is_no_join():
    plan = plan_vod([part("a", 0)], waited_out=False)
    assert plan.action == VodAction.ARCHIVE
    assert plan.vod_url == "/vod/a.mp4" and plan.parts == ("a",) and not plan.fallback


def test_parts_are_joined_in_the_order_they_connected_not_the_order_they_arrived():
    # listed as the database might return them: the last connection first
    parts = [part("zz-third", 20), part("mm-first", 0), part("aa-second", 10)]
    plan = plan_vod(parts, waited_out=False)
    assert plan.action == VodAction.JOIN
    assert plan.parts == ("mm-first", "aa-second", "zz-third")


def test_order_is_the_same_for_every_replica_when_two_parts_connected_at_once():
    assert [p.session_id for p in in_order([part("b", 5), part("a", 5), part("c", None)])] == ["a", "b", "c"]


def test_a_part_still_being_recorded_is_waited_for():
    plan = plan_vod([part("a", 0), part("b", 10, arrived=False)], waited_out=False)
    assert plan.action == VodAction.WAIT and plan.missing == ("b",)


def test_after_the_wait_the_parts_that_came_are_joined_and_the_missing_one_named():
    plan = plan_vod([part("a", 0), part("b", 10, arrived=False), part("c", 20)], waited_out=True)
    assert plan.action == VodAction.JOIN
    assert plan.parts == ("a", "c") and plan.missing == ("b",)


def test_after_the_wait_one_part_that_came_is_the_vod_without_a_join():
    plan = plan_vod([part("a", 0, arrived=False), part("b", 10)], waited_out=True)
    assert plan.action == VodAction.ARCHIVE and plan.vod_url == "/vod/b.mp4" and plan.missing == ("a",)


@pytest.mark.parametrize("second_arrived", [False, True])
def test_no_recording_at_all_archives_without_a_vod(second_arrived):
    parts = [part("a", 0, url=None), part("b", 10, arrived=second_arrived, url=None)]
    plan = plan_vod(parts, waited_out=True)
    assert plan.action == VodAction.ARCHIVE and plan.vod_url is None


def test_a_recording_that_came_empty_is_left_out_of_the_join():
    plan = plan_vod([part("a", 0), part("b", 10, url=""), part("c", 20)], waited_out=False)
    assert plan.action == VodAction.JOIN and plan.parts == ("a", "c")


def test_no_parts_archives_without_a_vod():
    assert plan_vod([], waited_out=False).action == VodAction.ARCHIVE


def test_provider_recordings_cannot_be_joined_so_the_longest_is_the_vod():
    plan = plan_vod([part("a", 0, duration=30, joinable=False), part("b", 10, duration=3600, joinable=False)],
                    waited_out=False)
    assert plan.action == VodAction.ARCHIVE and plan.vod_url == "/vod/b.mp4" and plan.fallback
