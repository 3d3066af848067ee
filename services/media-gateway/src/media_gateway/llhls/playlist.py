"""The LL-HLS media playlist of one rendition (RFC 8216bis), built from the parts a packager cuts.

The packager calls `add_part` for every CMAF fragment (`moof`+`mdat`) it has in full; a part
that starts with a key frame after the segment's target duration starts a new segment, so whole
segments are the concatenation of their parts and begin on key frames. `render` writes a playlist
that LL-HLS players read (`EXT-X-PART`, `EXT-X-PRELOAD-HINT`, blocking reload in
`EXT-X-SERVER-CONTROL`) and that older players still play (they skip the tags they do not know
and play the whole segments after `EXTINF`). `wants` answers a blocking reload
(`_HLS_msn`/`_HLS_part`): ready, wait, or too far ahead (400).

A transcoder that restarts mid-session (new init section, timestamps from zero) is announced with
`restart`: the next part opens a segment after `EXT-X-DISCONTINUITY` with its own `EXT-X-MAP`.
Wired by `media_gateway.llhls.origin`; see docs/ll-hls.md.
"""

from __future__ import annotations

import enum
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

    @property
    def duration(self) -> float:
        return sum(p.duration for p in self.parts)

    @property
    def uri(self) -> str:
        return f"seg-{self.msn}.m4s"


class MediaPlaylist:
    """`window` complete segments are listed; parts only for the last `part_segments` of them
    (and the open one), as the RFC allows removing parts older than three target durations."""

    def __init__(self, *, part_target: float = 1 / 3, segment_target: float = 1.0, window: int = 6,
                 part_segments: int = 3, init_uri: str = "init.mp4"):
        if part_target <= 0 or segment_target < part_target:
            raise ValueError("need 0 < part_target <= segment_target")
        self.part_target, self.segment_target = part_target, segment_target
        self.window, self.part_segments, self.init_uri = window, part_segments, init_uri
        self.segments: deque[Segment] = deque()
        self.ended = False
        self.discontinuity_sequence = 0  # discontinuities trimmed off the top (EXT-X-DISCONTINUITY-SEQUENCE)
        self._restarted = False

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
                current.complete = True
            current = Segment(msn=current.msn + 1 if current else 0, program_date_time=at.astimezone(UTC),
                              init_uri=self.init_uri, discontinuity=self._restarted)
            self._restarted = False
            self.segments.append(current)
            self._trim()
        part = Part(index=len(current.parts), duration=duration, independent=independent)
        current.parts.append(part)
        return current.msn, part.index

    def _full(self, segment: Segment) -> bool:
        return segment.duration >= self.segment_target * 0.9

    def end(self) -> None:
        """The stream ended: the open segment is complete and EXT-X-ENDLIST is written."""
        if self.segments and self.segments[-1].parts:
            self.segments[-1].complete = True
        self.ended = True

    def _trim(self) -> None:
        complete = [s for s in self.segments if s.complete]
        while len(complete) > self.window:
            if self.segments.popleft().discontinuity:
                self.discontinuity_sequence += 1
            complete.pop(0)

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
        for segment in self.segments:
            if segment.msn == msn:
                return segment.parts[index] if 0 <= index < len(segment.parts) else None
        return None

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
            done = max((s.msn for s in self.segments if s.complete), default=-1)
            return Reload.READY if done >= msn else Reload.WAIT
        if msn < last.msn:
            segment = next((s for s in self.segments if s.msn == msn), None)
            # a part past the end of a closed segment means the first part of the next one (6.2.5.2)
            if segment is not None and part >= len(segment.parts):
                return self.wants(msn + 1, 0)
            return Reload.READY
        if msn == last.msn:
            return Reload.READY if part < len(last.parts) else Reload.WAIT
        return Reload.WAIT

    def target_duration(self) -> int:
        longest = max((s.duration for s in self.segments if s.complete), default=self.segment_target)
        return max(1, math.ceil(round(longest, 3)))

    def render(self) -> str:
        part_target = max([self.part_target, *(p.duration for s in self.segments for p in s.parts)])
        lines = ["#EXTM3U", "#EXT-X-VERSION:9", f"#EXT-X-TARGETDURATION:{self.target_duration()}",
                 # three parts behind the live edge: the RFC's minimum is two part targets
                 f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * part_target:.3f}",
                 f"#EXT-X-PART-INF:PART-TARGET={part_target:.5f}",
                 f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].msn if self.segments else 0}"]
        if self.discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self.discontinuity_sequence}")
        init_uri = self.segments[0].init_uri if self.segments else self.init_uri
        lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
        with_parts = {s.msn for s in list(self.segments)[-(self.part_segments + 1):]}
        for segment in self.segments:
            if not segment.parts:
                continue
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if segment.init_uri != init_uri:
                init_uri = segment.init_uri
                lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(segment.program_date_time)}")
            if segment.msn in with_parts and not self.ended:
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


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
