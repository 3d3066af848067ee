"""The capture-time stamp the glass-to-glass benchmark burns into every frame, and its decoder.

A row of STAMP_BITS blocks across the top of the picture (32 px tall at 720p), each black (0) or
white (1): 32 bits of the capture time in milliseconds since the run's epoch, then an 8-bit check
(the four bytes summed, mod 256) so a frame the decoder misreads (a blurred block at a low
bitrate, a frame mid-switch) is dropped, never counted with a wrong time. The page decodes the
same layout in JavaScript (glass.py's PROBE); `decode_row` here reads frames cut from the segments.
"""

from __future__ import annotations

STAMP_BITS = 40  # 32 data + 8 check
DATA_BITS = 32
BLACK, WHITE = 16, 235  # video-range luma


def checksum(value: int) -> int:
    return sum(value.to_bytes(4, "big")) & 0xFF


def bits(value: int) -> list[int]:
    word = (value & 0xFFFFFFFF) << 8 | checksum(value & 0xFFFFFFFF)
    return [(word >> (STAMP_BITS - 1 - i)) & 1 for i in range(STAMP_BITS)]


def stamp_row(value: int, width: int) -> bytes:
    """One luma row of `width` pixels carrying `value`; the caller repeats it for the band's rows."""
    row = bytearray(width)
    for i, bit in enumerate(bits(value)):
        start, end = i * width // STAMP_BITS, (i + 1) * width // STAMP_BITS
        row[start:end] = bytes([WHITE if bit else BLACK]) * (end - start)
    return bytes(row)


def decode_row(luma: bytes | list[int], width: int) -> int | None:
    """The value from one luma row through the middle of the band, None if the check fails."""
    word = 0
    for i in range(STAMP_BITS):
        x = (2 * i + 1) * width // (2 * STAMP_BITS)  # the block's centre
        word = word << 1 | (1 if luma[x] >= 128 else 0)
    value = word >> 8
    return value if checksum(value) == word & 0xFF else None


def band_height(height: int) -> int:
    """32 px at 720p, in proportion at other heights (a rendition is scaled from the source)."""
    return max(8, round(height * 32 / 720))
