"""Presence bookkeeping on its own: latest snapshot per edge, sum over edges, expiry."""

from datetime import UTC, datetime, timedelta

from contracts.envelope import make_event
from contracts.events.chat import ChatPresence

from streams_service.viewers.service import PresenceTracker, parse_presence

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def snap(channel: str, edge: str, n: int, seconds: float = 0) -> ChatPresence:
    return ChatPresence(edge_id=edge, channel_id=channel, connections=n, users=n,
                        at=T0 + timedelta(seconds=seconds))


def test_sums_the_latest_count_of_each_edge():
    tracker = PresenceTracker(15, Clock())
    tracker.observe(snap("c1", "edge-a", 3))
    tracker.observe(snap("c1", "edge-b", 4))
    tracker.observe(snap("c2", "edge-a", 9))
    assert tracker.total("c1") == 7 and tracker.total("c2") == 9 and tracker.total("nobody") == 0
    tracker.observe(snap("c1", "edge-a", 1, seconds=1))  # newer snapshot replaces, never adds
    assert tracker.total("c1") == 5


def test_an_older_snapshot_is_ignored():
    tracker = PresenceTracker(15, Clock())
    assert tracker.observe(snap("c1", "edge-a", 10, seconds=5))
    assert not tracker.observe(snap("c1", "edge-a", 2, seconds=4))
    assert tracker.total("c1") == 10


def test_an_edge_not_heard_from_expires():
    clock = Clock()
    tracker = PresenceTracker(15, clock)
    tracker.observe(snap("c1", "edge-a", 3))
    tracker.observe(snap("c1", "edge-b", 4))
    clock.now += 10
    tracker.observe(snap("c1", "edge-a", 3, seconds=10))  # edge-a keeps reporting, edge-b went quiet
    clock.now += 6
    assert tracker.total("c1") == 3  # edge-b's last word is 16 s old
    tracker.expire()
    assert tracker.channels() == ["c1"]
    clock.now += 20
    tracker.expire()
    assert tracker.channels() == [] and tracker.total("c1") == 0


def test_parse_presence_reads_the_envelope_or_the_bare_payload():
    payload = snap("c1", "edge-a", 3)
    assert parse_presence(make_event("chat.presence", payload, source="chat").to_json_bytes()) == payload
    assert parse_presence(payload.to_json_bytes()) == payload
    assert parse_presence(b"not json") is None
    assert parse_presence(b'{"edgeId": "e"}') is None
