"""Which VOD an ENDING stream gets, as pure rules (no I/O, unit-tested on their own).

A stream is fed by one encoder connection (ingest session) per part: a reconnect inside the
window adds a part, and the media gateway records each part on its own. The VOD must play every
part in broadcast order. So once a stream has ended:

- it waits until every part's `media.recording.ready` is in (`WAIT`), but no longer than
  `recording_wait_seconds` after its end: then it goes on with the parts that came, and the
  missing ones are named in the log;
- no recording: ARCHIVED without a VOD; one recording: that recording is the VOD, as it is (no
  copy, no join: a stream without a reconnect costs what it always did);
- several recordings, all in the media gateway's store: `stream.vod_requested` asks the gateway
  to join them in order, and the stream is ARCHIVED when `media.vod.joined` comes back;
- several, but some made by a provider (Mux, Cloudflare keep their recordings; the gateway holds
  no copy to join): the longest one, as before parts were joined, and a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

__all__ = ["Part", "VodAction", "VodPlan", "in_order", "longest", "plan_vod"]


@dataclass(frozen=True)
class Part:
    """One encoder connection that fed the stream, and what became of its recording."""

    session_id: str
    connected_at: datetime | None
    arrived: bool
    """Its `media.recording.ready` came (with or without a playable recording)."""
    vod_url: str | None = None
    duration_seconds: float | None = None
    joinable: bool = True
    """The recording lives in the media gateway's object store (a local ingest), so it can be joined."""


class VodAction(Enum):
    WAIT = "wait"
    """A part's recording is still due: decide when it comes (or the wait is over)."""
    ARCHIVE = "archive"
    """ARCHIVED now, with `vod_url` (None: there is no recording)."""
    JOIN = "join"
    """Ask the media gateway to join `parts`, in this order; ARCHIVED once they are joined."""


@dataclass(frozen=True)
class VodPlan:
    action: VodAction
    vod_url: str | None = None
    parts: tuple[str, ...] = ()
    """JOIN: the ingest sessions to join, in broadcast order."""
    missing: tuple[str, ...] = field(default=())
    """Parts whose recording never came (the wait was over): left out, and to be logged."""
    fallback: bool = False
    """Several recordings that cannot be joined: only the longest is the VOD."""


def in_order(parts: list[Part]) -> list[Part]:
    """Broadcast order: by connection time (an unknown time last), the session id breaking ties so
    every replica decides the same."""
    return sorted(parts, key=lambda p: (p.connected_at is None, p.connected_at or datetime.min, p.session_id))


def plan_vod(parts: list[Part], *, waited_out: bool) -> VodPlan:
    """What to do with an ENDING stream fed by `parts`; `waited_out`: recording_wait_seconds have
    passed since it ended."""
    ordered = in_order(parts)
    missing = tuple(p.session_id for p in ordered if not p.arrived)
    if missing and not waited_out:
        return VodPlan(VodAction.WAIT, missing=missing)
    usable = [p for p in ordered if p.arrived and p.vod_url]
    if not usable:
        return VodPlan(VodAction.ARCHIVE, missing=missing)
    if len(usable) == 1:
        return VodPlan(VodAction.ARCHIVE, vod_url=usable[0].vod_url, parts=(usable[0].session_id,), missing=missing)
    if all(p.joinable for p in usable):
        return VodPlan(VodAction.JOIN, parts=tuple(p.session_id for p in usable), missing=missing)
    return longest(usable, missing)


def longest(usable: list[Part], missing: tuple[str, ...] = ()) -> VodPlan:
    """The fallback when parts cannot (or could not) be joined: the longest recording alone."""
    best = max(usable, key=lambda p: p.duration_seconds or 0.0)
    return VodPlan(VodAction.ARCHIVE, vod_url=best.vod_url, parts=(best.session_id,), missing=missing,
                   fallback=len(usable) > 1)
