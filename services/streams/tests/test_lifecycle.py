"""The lifecycle rules on their own: the transition table, the reconnect window, durations."""

from datetime import UTC, datetime, timedelta

import pytest

from streams_service.config import Settings
from streams_service.streams.lifecycle import (TRANSITIONS, ConnectAction, IllegalTransition, LiveSession,
                                               StreamStatus, can_transition, check_transition,
                                               duration_seconds, on_connect, window_expired)

OFFLINE, LIVE, ENDING, ARCHIVED = (StreamStatus.OFFLINE, StreamStatus.LIVE, StreamStatus.ENDING,
                                   StreamStatus.ARCHIVED)
LEGAL = {(OFFLINE, LIVE), (OFFLINE, ENDING), (LIVE, ENDING), (ENDING, ARCHIVED)}
T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize("current", list(StreamStatus))
@pytest.mark.parametrize("target", list(StreamStatus))
def test_transition_table(current, target):
    legal = (current, target) in LEGAL
    assert can_transition(current, target) is legal
    assert can_transition(current.value, target.value) is legal  # plain strings, as stored
    if legal:
        assert check_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as exc:
            check_transition(current, target)
        assert exc.value.current is current and exc.value.target is target


def test_the_table_only_moves_forward_and_archived_is_final():
    order = list(StreamStatus)
    assert order == [OFFLINE, LIVE, ENDING, ARCHIVED]
    for current, targets in TRANSITIONS.items():
        assert all(order.index(t) > order.index(current) for t in targets)
    assert TRANSITIONS[ARCHIVED] == frozenset()
    assert set(TRANSITIONS) == set(StreamStatus)


@pytest.mark.parametrize(("current", "target", "words"), [
    (LIVE, OFFLINE, "never moves backwards"),
    (ARCHIVED, LIVE, "never moves backwards"),
    (LIVE, LIVE, "already is"),
    (OFFLINE, ARCHIVED, "can only become ENDING, LIVE"),
    (ARCHIVED, ARCHIVED, "already is"),
])
def test_illegal_transitions_say_why(current, target, words):
    message = str(IllegalTransition(current, target))
    assert f"A {current.value} stream cannot become {target.value}" in message
    assert words in message


def test_connect_without_a_live_stream_starts_one():
    assert on_connect(None, at(0), 10) is ConnectAction.START


def test_connect_while_the_encoder_is_still_connected_replaces_it():
    live = LiveSession(disconnected_at=None, current_connected_at=at(0))
    assert on_connect(live, at(5), 10) is ConnectAction.CONTINUE


@pytest.mark.parametrize(("gap", "action"), [
    (0.5, ConnectAction.CONTINUE),
    (10.0, ConnectAction.CONTINUE),          # the window is inclusive
    (10.001, ConnectAction.END_AND_START),
    (3600, ConnectAction.END_AND_START),
    (-2.0, ConnectAction.CONTINUE),          # the connect happened before the disconnect was seen
])
def test_reconnect_window(gap, action):
    live = LiveSession(disconnected_at=at(100), current_connected_at=at(0))
    assert on_connect(live, at(100 + gap), 10) is action


def test_a_connect_older_than_the_current_one_changes_nothing():
    live = LiveSession(disconnected_at=None, current_connected_at=at(50))
    assert on_connect(live, at(40), 10) is ConnectAction.ATTACH_STALE
    live = LiveSession(disconnected_at=at(60), current_connected_at=at(50))
    assert on_connect(live, at(49), 10) is ConnectAction.ATTACH_STALE


def test_window_expired():
    assert not window_expired(None, at(1000), 10)
    assert not window_expired(at(0), at(10), 10)
    assert window_expired(at(0), at(10.5), 10)
    assert not window_expired(at(0), at(-5), 10)


def test_duration_in_whole_seconds():
    assert duration_seconds(None, at(5)) is None
    assert duration_seconds(at(0), None) is None
    assert duration_seconds(at(0), at(61.9)) == 61
    assert duration_seconds(at(10), at(0)) == 0


def test_defaults_match_the_contract():
    s = Settings()
    assert s.port == 8103 and s.service_name == "streams"
    assert s.reconnect_window_seconds == 10       # API.md
    assert s.presence_ttl_seconds == 15
    assert s.viewers_publish_interval_seconds == 1.0  # EVENTS.md: at most once a second
    assert s.sweep_interval_seconds <= 1.0
