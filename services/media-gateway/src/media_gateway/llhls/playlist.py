"""The LL-HLS media playlist of one rendition (RFC 8216bis), built from the parts a packager cuts.

The packager calls `add_part` for every CMAF fragment (`moof`+`mdat`) it has in full; a part
that starts with a key frame after the segment's target duration starts a new segment, so whole
segments are the concatenation of their parts and begin on key frames. `render` writes a playlist
that LL-HLS players read (`EXT-X-PART`, `EXT-X-PRELOAD-HINT`, blocking reload in
`EXT-X-SERVER-CONTROL`) and that older players still play (they skip the tags they do not know
and play the whole segments after `EXTINF`). `wants` answers a blocking reload
(`_HLS_msn`/`_HLS_part`): ready, wait, or too far ahead (400).

DVR: with `dvr_seconds` the playlist keeps about that much media (at least `window` segments)
as a sliding window, not an EVENT playlist (one would grow for the whole stream); parts stay listed
only for the last few segments. A long playlist costs bytes on every blocking reload, so it offers
delta updates (`CAN-SKIP-UNTIL`, answered for `_HLS_skip=YES` by `render(skip=True)`, RFC 8216bis
6.2.5.1): a player then reloads about a dozen segments, not the whole window.

A transcoder that restarts mid-session (new init section, timestamps from zero) is announced with
`restart`: the next part opens a segment after `EXT-X-DISCONTINUITY` with its own `EXT-X-MAP`.
Wired by `media_gateway.llhls.origin`; see docs/ll-hls.md.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

# RFC 8216bis 6.2.5.2: a request more than two segments past the last one in the playlist is 400
MAX_MSN_AHEAD = 2


class Reload(enum.Enum):
    READY = "ready"  # the playlist already has what the request waits for
    WAIT = "wait"  # hold the request until it has
    TOO_FAR = "too_far"  # more than two segments ahead: 400


@dataclass(frozen=True)
class Part:
    index: int
    duration: float
    independent: bool  # starts with a key frame

    def uri(self, msn: int) -> str:
        return f"part-{msn}.{self.index}.m4s"


@dataclass
class Segment:
    msn: int
    program_date_time: datetime  # wall clock of the segment's first frame
    parts: list[Part] = field(default_factory=list)
    complete: bool = False
    init_uri: str = "init.mp4"
    discontinuity: bool = False  # the encoder restarted before this segment
    # a complete segment never changes: its duration and its whole-segment lines are kept, as a DVR
    # playlist renders ~1800 of them on every plain reload
    seconds: float | None = field(default=None, repr=False)
    lines: str | None = field(default=None, repr=False)

    @property
    def duration(self) -> float:
        if self.seconds is not None:
            return self.seconds
        return sum(p.duration for p in self.parts)

    @property
    def uri(self) -> str:
        return f"seg-{self.msn}.m4s"


class MediaPlaylist:
    """At least `window` complete segments are listed, and with `dvr_seconds` as many as hold that
    much media (the DVR window); parts only for the last `part_segments` of them (and the open one),
    as the RFC allows removing parts older than three target durations."""

    def __init__(self, *, part_target: float = 1 / 3, segment_target: float = 1.0, window: int = 6,
                 part_segments: int = 3, init_uri: str = "init.mp4", dvr_seconds: float = 0.0):
        if part_target <= 0 or segment_target < part_target:
            raise ValueError("need 0 < part_target <= segment_target")
        self.part_target, self.segment_target = part_target, segment_target
        self.window, self.part_segments, self.init_uri = window, part_segments, init_uri
        self.dvr_seconds = dvr_seconds
        self.segments: deque[Segment] = deque()
        self.ended = False
        self.discontinuity_sequence = 0  # discontinuities trimmed off the top (EXT-X-DISCONTINUITY-SEQUENCE)
        self._restarted = False
        # kept as they change, not summed on every request: a DVR window lists ~1800 segments
        self._complete_count, self._complete_seconds, self._longest = 0, 0.0, 0.0
        self._longest_part = part_target

    def restart(self, init_uri: str) -> None:
        """The encoder's output starts over with a new init section: the next part opens a segment
        after a discontinuity (players reset their decoder and timeline there)."""
        self.init_uri = init_uri
        self._restarted = bool(self.segments)

    # ---- building -----------------------------------------------------------------------------
    def add_part(self, duration: float, independent: bool, at: datetime) -> tuple[int, int]:
        """Announce a part in full; `at` is the wall clock of its first frame. -> (msn, part index)."""
        if self.ended:
            raise RuntimeError("the playlist has ended")
        if duration <= 0:
            raise ValueError("a part lasts more than 0 s")
        current = self.segments[-1] if self.segments else None
        if current is None and not independent:
            raise ValueError("a segment starts with an independent part (a key frame)")
        # a segment is cut on a key frame, once it holds about its target duration (a 10 % margin:
        # fragment durations are whole frames, so 3 x 1/3 s may add up to a hair under 1 s)
        if self._restarted and not independent:
            raise ValueError("a segment starts with an independent part (a key frame)")
        if current is None or self._restarted or (independent and self._full(current)):
            if current is not None:
                self._completed(current)
            current = Segment(msn=current.msn + 1 if current else 0, program_date_time=at.astimezone(UTC),
                              init_uri=self.init_uri, discontinuity=self._restarted)
            self._restarted = False
            self.segments.append(current)
            self._trim()
        part = Part(index=len(current.parts), duration=duration, independent=independent)
        current.parts.append(part)
        self._longest_part = max(self._longest_part, duration)
        return current.msn, part.index

    def _completed(self, segment: Segment) -> None:
        segment.complete = True
        self._complete_count += 1
        duration = segment.seconds = sum(p.duration for p in segment.parts)
        self._complete_seconds += duration
        self._longest = max(self._longest, duration)

    def _full(self, segment: Segment) -> bool:
        return segment.duration >= self.segment_target * 0.9

    def end(self) -> None:
        """The stream ended: the open segment is complete and EXT-X-ENDLIST is written."""
        if self.segments and self.segments[-1].parts and not self.segments[-1].complete:
            self._completed(self.segments[-1])
        self.ended = True

    def _trim(self) -> None:
        # only complete segments are ever at the top (the open one is the last)
        while self._complete_count > self.window and self.segments[0].complete \
                and self._complete_seconds - self.segments[0].duration >= self.dvr_seconds:
            dropped = self.segments.popleft()
            self._complete_count -= 1
            self._complete_seconds -= dropped.duration
            if dropped.discontinuity:
                self.discontinuity_sequence += 1

    @property
    def seconds(self) -> float:
        """Media the playlist lists in whole segments (the DVR window a player may seek in)."""
        return self._complete_seconds

    def segment(self, msn: int) -> Segment | None:
        # media sequence numbers are consecutive, so the position follows from the first one
        if not self.segments or not 0 <= msn - self.segments[0].msn < len(self.segments):
            return None
        return self.segments[msn - self.segments[0].msn]

    # ---- reading ------------------------------------------------------------------------------
    def next_part(self) -> tuple[int, int] | None:
        """(msn, index) of the part the packager will announce next: the preload hint."""
        if self.ended or not self.segments:
            return None
        last = self.segments[-1]
        # a full segment is cut at the next key frame: hint the next segment's first part, which
        # comes (after one more part of this one if the key frame is late), rather than a part of
        # this one that would never exist once the key frame arrives on time
        if self._restarted or self._full(last):
            return last.msn + 1, 0
        return last.msn, len(last.parts)

    def find_part(self, msn: int, index: int) -> Part | None:
        segment = self.segment(msn)
        if segment is None:
            return None
        return segment.parts[index] if 0 <= index < len(segment.parts) else None

    def wants(self, msn: int, part: int | None = None) -> Reload:
        """A blocking reload for segment `msn` (and its part `part`)."""
        if msn < 0 or (part is not None and part < 0):
            raise ValueError("_HLS_msn and _HLS_part are not negative")
        if not self.segments:
            return Reload.TOO_FAR if msn > MAX_MSN_AHEAD else Reload.WAIT
        last = self.segments[-1]
        if msn > last.msn + MAX_MSN_AHEAD:
            return Reload.TOO_FAR
        if self.ended:
            return Reload.READY  # nothing more will come: answer with the final playlist
        if part is None:
            done = last.msn if last.complete else last.msn - 1
            return Reload.READY if done >= msn else Reload.WAIT
        if msn < last.msn:
            segment = self.segment(msn)
            # a part past the end of a closed segment means the first part of the next one (6.2.5.2)
            if segment is not None and part >= len(segment.parts):
                return self.wants(msn + 1, 0)
            return Reload.READY
        if msn == last.msn:
            return Reload.READY if part < len(last.parts) else Reload.WAIT
        return Reload.WAIT

    def target_duration(self) -> int:
        # the longest segment ever (not only of the window): the target duration may not change
        return max(1, math.ceil(round(self._longest or self.segment_target, 3)))

    def skip_until(self) -> float:
        """CAN-SKIP-UNTIL: 0 without a DVR window (a short playlist gains nothing from deltas),
        else six target durations, the RFC's minimum (the smallest delta update)."""
        return 6.0 * self.target_duration() if self.dvr_seconds > 0 else 0.0

    def render(self, *, skip: bool = False) -> str:
        """The playlist; `skip`: the delta update (`_HLS_skip=YES`), the segments older than the
        skip boundary replaced by EXT-X-SKIP (the whole playlist when there is nothing to skip)."""
        part_target = self._longest_part  # PART-TARGET may not shrink during the stream either
        server_control = f"CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * part_target:.3f}"
        skip_until = self.skip_until()
        if skip_until:
            server_control += f",CAN-SKIP-UNTIL={skip_until:.1f}"
        lines = ["#EXTM3U", "#EXT-X-VERSION:9", f"#EXT-X-TARGETDURATION:{self.target_duration()}",
                 # three parts behind the live edge: the RFC's minimum is two part targets
                 f"#EXT-X-SERVER-CONTROL:{server_control}",
                 f"#EXT-X-PART-INF:PART-TARGET={part_target:.5f}",
                 f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].msn if self.segments else 0}"]
        if self.discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self.discontinuity_sequence}")
        skipped = self._skipped(skip_until) if skip and skip_until else 0
        if skipped:
            lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
        listed = itertools.islice(self.segments, skipped, None)
        # the init section of the first segment listed (a delta's first may follow a skipped EXT-X-MAP)
        init_uri = self.segments[skipped].init_uri if self.segments else self.init_uri
        lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
        first_with_parts = len(self.segments) - (self.part_segments + 1)
        with_parts = {s.msn for s in itertools.islice(self.segments, max(0, first_with_parts), None)}
        for segment in listed:
            if not segment.parts:
                continue
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if segment.init_uri != init_uri:
                init_uri = segment.init_uri
                lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
            if segment.complete and (segment.msn not in with_parts or self.ended):
                if segment.lines is None:
                    segment.lines = (f"#EXT-X-PROGRAM-DATE-TIME:{_iso(segment.program_date_time)}\n"
                                     f"#EXTINF:{segment.duration:.5f},\n{segment.uri}")
                lines.append(segment.lines)
                continue
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(segment.program_date_time)}")
            if not self.ended:
                for p in segment.parts:
                    lines.append(f'#EXT-X-PART:DURATION={p.duration:.5f},URI="{p.uri(segment.msn)}"'
                                 + (",INDEPENDENT=YES" if p.independent else ""))
            if segment.complete:
                lines += [f"#EXTINF:{segment.duration:.5f},", segment.uri]
        if (hint := self.next_part()) is not None:
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-{hint[0]}.{hint[1]}.m4s"')
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def _skipped(self, skip_until: float) -> int:
        """How many segments from the top lie wholly before the skip boundary (`skip_until`
        seconds before the end of the playlist); the ones after it are listed in a delta."""
        kept = 0.0
        for position in range(len(self.segments) - 1, -1, -1):
            kept += self.segments[position].duration
            if kept >= skip_until:
                return position
        return 0


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
