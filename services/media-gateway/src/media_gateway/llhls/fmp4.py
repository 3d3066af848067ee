"""Split ffmpeg's fragmented MP4 output into the init section and LL-HLS parts.

ffmpeg (`-f mp4 -movflags empty_moov+default_base_moof+frag_discont -frag_duration 333333`)
writes `ftyp`+`moov` once, then one `moof`+`mdat` pair per fragment as soon as the fragment is
complete. Each pair is one part; the playlist writer needs its duration (the video track's sample
durations) and whether it starts with a key frame (its first video sample is a sync sample), so
only those boxes are read: `moov/trak/{tkhd,mdia/{mdhd,hdlr}}`, `moov/mvex/trex` and
`moof/traf/{tfhd,trun}` (ISO/IEC 14496-12).

Used by `media_gateway.llhls.origin` on every rendition the transcoder writes; see docs/ll-hls.md.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

NON_SYNC = 0x10000  # sample_is_non_sync_sample in the sample flags


@dataclass(frozen=True)
class Init:
    data: bytes  # ftyp + moov: the EXT-X-MAP


@dataclass(frozen=True)
class Fragment:
    data: bytes  # moof + mdat: one part
    duration: float  # seconds of video
    independent: bool  # the first video sample is a key frame


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """(type, payload start, box end) of every complete box in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos  # to the end of the enclosing space
        if size < header or pos + size > end:
            return
        yield kind.decode("latin-1"), pos + header, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: str) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in boxes(data, start, end) if k == kind), None)


class FragmentReader:
    """Feed it bytes as they arrive; it returns what became complete."""

    def __init__(self):
        self._buffer = bytearray()
        self._head = bytearray()  # ftyp until moov arrives
        self._moof: bytes | None = None
        self.video_track: int | None = None
        self.timescale = 0
        self._trex_flags: dict[int, int] = {}
        self._trex_duration: dict[int, int] = {}

    def feed(self, chunk: bytes) -> list[Init | Fragment]:
        self._buffer += chunk
        out: list[Init | Fragment] = []
        consumed = 0
        data = bytes(self._buffer)
        for kind, start, end in boxes(data):
            box = data[consumed:end]  # top-level boxes are back to back
            consumed = end
            if kind == "ftyp":
                self._head = bytearray(box)
            elif kind == "moov":
                self._read_moov(data, start, end)
                out.append(Init(bytes(self._head) + box))
            elif kind == "moof":
                self._moof = box
            elif kind == "mdat" and self._moof is not None:
                duration, independent = self._read_moof(self._moof)
                out.append(Fragment(self._moof + box, duration, independent))
                self._moof = None
        del self._buffer[:consumed]
        return out

    def _read_moov(self, data: bytes, start: int, end: int) -> None:
        for kind, s, e in boxes(data, start, end):
            if kind == "trak":
                tkhd, mdia = _child(data, s, e, "tkhd"), _child(data, s, e, "mdia")
                if not tkhd or not mdia:
                    continue
                version = data[tkhd[0]]
                track_id = struct.unpack_from(">I", data, tkhd[0] + (20 if version == 1 else 12))[0]
                hdlr, mdhd = _child(data, *mdia, "hdlr"), _child(data, *mdia, "mdhd")
                if hdlr and mdhd and data[hdlr[0] + 8:hdlr[0] + 12] == b"vide":
                    mdhd_version = data[mdhd[0]]
                    self.video_track = track_id
                    self.timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if mdhd_version == 1 else 12))[0]
            elif kind == "mvex":
                for k, ts, _te in boxes(data, s, e):
                    if k == "trex":
                        track_id, _desc, duration, _size, flags = struct.unpack_from(">5I", data, ts + 4)
                        self._trex_duration[track_id], self._trex_flags[track_id] = duration, flags

    def _read_moof(self, moof: bytes) -> tuple[float, bool]:
        """(seconds of video, starts with a key frame) from the video track's traf."""
        for kind, s, e in boxes(moof, 8):
            if kind != "traf":
                continue
            tfhd = _child(moof, s, e, "tfhd")
            if tfhd is None:
                continue
            flags = int.from_bytes(moof[tfhd[0] + 1:tfhd[0] + 4], "big")
            track_id = struct.unpack_from(">I", moof, tfhd[0] + 4)[0]
            if track_id != self.video_track:
                continue
            pos = tfhd[0] + 8
            pos += 8 if flags & 0x01 else 0  # base data offset
            pos += 4 if flags & 0x02 else 0  # sample description index
            default_duration = self._trex_duration.get(track_id, 0)
            default_flags = self._trex_flags.get(track_id, 0)
            if flags & 0x08:
                default_duration = struct.unpack_from(">I", moof, pos)[0]
                pos += 4
            pos += 4 if flags & 0x10 else 0  # default sample size
            if flags & 0x20:
                default_flags = struct.unpack_from(">I", moof, pos)[0]
            total, first_flags = 0, None
            for k, ts, _te in boxes(moof, s, e):
                if k != "trun":
                    continue
                tflags = int.from_bytes(moof[ts + 1:ts + 4], "big")
                count = struct.unpack_from(">I", moof, ts + 4)[0]
                pos = ts + 8 + (4 if tflags & 0x01 else 0)
                first = None
                if tflags & 0x04:
                    first = struct.unpack_from(">I", moof, pos)[0]
                    pos += 4
                for i in range(count):
                    duration, sample_flags = default_duration, default_flags
                    if tflags & 0x100:
                        duration = struct.unpack_from(">I", moof, pos)[0]
                        pos += 4
                    pos += 4 if tflags & 0x200 else 0  # sample size
                    if tflags & 0x400:
                        sample_flags = struct.unpack_from(">I", moof, pos)[0]
                        pos += 4
                    pos += 4 if tflags & 0x800 else 0  # composition time offset
                    if i == 0 and first is not None:
                        sample_flags = first
                    if first_flags is None:
                        first_flags = sample_flags
                    total += duration
            if self.timescale and first_flags is not None:
                return total / self.timescale, not first_flags & NON_SYNC
        return 0.0, False
