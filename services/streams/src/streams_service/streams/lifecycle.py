"""The stream lifecycle as pure rules: no I/O, so every rule is unit-tested on its own.

    OFFLINE --ingest connects / creator goes live--> LIVE
    OFFLINE --creator ends a session that never went live--> ENDING
    LIVE    --creator ends / encoder gone longer than the reconnect window--> ENDING
    ENDING  --recording ready / recording never came / creator archives--> ARCHIVED

A status never moves backwards and ARCHIVED is final. OFFLINE -> ENDING exists so a prepared
session that is abandoned can be closed like any other; with no broadcast there is no recording
to wait for, so it goes on to ARCHIVED at once (without a VOD).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from contracts.events.streams import StreamStatus

__all__ = ["TRANSITIONS", "IllegalTransition", "StreamStatus", "can_transition", "check_transition",
           "ConnectAction", "LiveSession", "on_connect", "window_expired", "duration_seconds"]

TRANSITIONS: dict[StreamStatus, frozenset[StreamStatus]] = {
    StreamStatus.OFFLINE: frozenset({StreamStatus.LIVE, StreamStatus.ENDING}),
    StreamStatus.LIVE: frozenset({StreamStatus.ENDING}),
    StreamStatus.ENDING: frozenset({StreamStatus.ARCHIVED}),
    StreamStatus.ARCHIVED: frozenset(),
}

_ORDER = {status: rank for rank, status in enumerate(StreamStatus)}


class IllegalTransition(Exception):
    """The requested move is not in the transition table (answered as 409 by the API)."""

    def __init__(self, current: StreamStatus, target: StreamStatus):
        self.current = StreamStatus(current)
        self.target = StreamStatus(target)
        if self.target == self.current:
            why = "it already is"
        elif _ORDER[self.target] < _ORDER[self.current]:
            why = "a stream never moves backwards"
        elif self.current == StreamStatus.ARCHIVED:
            why = "an archived stream is final"
        else:
            allowed = ", ".join(sorted(s.value for s in TRANSITIONS[self.current]))
            why = f"from {self.current.value} it can only become {allowed}"
        super().__init__(f"A {self.current.value} stream cannot become {self.target.value}: {why}.")


def can_transition(current: StreamStatus | str, target: StreamStatus | str) -> bool:
    return StreamStatus(target) in TRANSITIONS[StreamStatus(current)]


def check_transition(current: StreamStatus | str, target: StreamStatus | str) -> StreamStatus:
    """The target status when the move is legal; IllegalTransition otherwise."""
    if not can_transition(current, target):
        raise IllegalTransition(StreamStatus(current), StreamStatus(target))
    return StreamStatus(target)


# ---- the reconnect window ---------------------------------------------------------------------

class ConnectAction(Enum):
    START = "start"
    """No stream is LIVE: the prepared session (or a new one) goes LIVE with this ingest."""
    CONTINUE = "continue"
    """The LIVE stream carries on with this ingest (same stream id): a reconnect inside the
    window, or a new connection that replaced the encoder's current one."""
    ATTACH_STALE = "attach_stale"
    """An ingest older than the LIVE stream's current one (a late event): remembered for its
    recording, but it changes nothing else."""
    END_AND_START = "end_and_start"
    """The LIVE stream's encoder left longer than the window before this connect: that stream
    ends, and this ingest starts the next one."""


@dataclass(frozen=True)
class LiveSession:
    """What the reconnect rule needs to know about the channel's LIVE stream."""

    disconnected_at: datetime | None
    """When its current encoder left; None while connected."""
    current_connected_at: datetime | None
    """When its current ingest connected (None if unknown)."""


def on_connect(live: LiveSession | None, at: datetime, window_seconds: float) -> ConnectAction:
    """What an ingest connecting at `at` (the provider's time) does to the channel's LIVE stream."""
    if live is None:
        return ConnectAction.START
    if live.current_connected_at is not None and at < live.current_connected_at:
        return ConnectAction.ATTACH_STALE
    if live.disconnected_at is None:
        return ConnectAction.CONTINUE
    if (at - live.disconnected_at).total_seconds() <= window_seconds:
        return ConnectAction.CONTINUE
    return ConnectAction.END_AND_START


def window_expired(disconnected_at: datetime | None, now: datetime, window_seconds: float) -> bool:
    """Whether a LIVE stream whose encoder left at `disconnected_at` must end now."""
    return disconnected_at is not None and (now - disconnected_at).total_seconds() > window_seconds


def duration_seconds(start: datetime | None, end: datetime | None) -> int | None:
    """Whole seconds from start to end; None when the stream never started (0 if clocks disagree)."""
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))
