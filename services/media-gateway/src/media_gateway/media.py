"""ffmpeg and ffprobe, run as subprocesses without blocking the event loop.

Arguments are passed as a list (never through a shell) and only ever contain paths the service
built itself from opaque session ids, never a stream key.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

log = logging.getLogger("media_gateway.media")


class MediaError(RuntimeError):
    """ffmpeg or ffprobe failed; the message holds the tail of its stderr."""


async def _run(argv: list[str], timeout: float, stdin: bytes | None = None) -> bytes:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL if stdin is None
                                                else asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise MediaError(f"{Path(argv[0]).name} exited with {proc.returncode}: {' | '.join(tail)}")
    return out


async def probe_duration(ffprobe: str, path: Path, timeout: float = 60) -> float:
    """Duration in seconds of a media file (container duration)."""
    out = await _run([ffprobe, "-v", "error", "-show_entries", "format=duration",
                      "-of", "default=noprint_wrappers=1:nokey=1", str(path)], timeout)
    text = out.decode().strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        raise MediaError(f"ffprobe gave no duration for {path.name}") from None


async def remux_to_mp4(ffmpeg: str, source: Path, target: Path, timeout: float = 3600, *, claim: str = "") -> None:
    """FLV recording -> MP4 (moov up front, so playback starts before the download ends).

    Copies the streams when they fit MP4 (H.264/AAC from OBS or ffmpeg); re-encodes otherwise.
    Writes to a temporary name of its own (`claim`: one per job claim, so two remuxes of one
    recording never write into the same file) and renames, so a reader never sees half a file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{claim}.partial" if claim else f".{target.name}.partial")
    common = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
              "-map", "0:v:0?", "-map", "0:a:0?"]
    tail = ["-movflags", "+faststart", "-f", "mp4", str(partial)]
    try:
        try:
            await _run([*common, "-c", "copy", *tail], timeout)
        except MediaError as exc:
            log.warning("remux by copy failed; re-encoding", extra={"file": source.name, "error": str(exc)})
            await _run([*common, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-b:a", "128k", *tail], timeout)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


async def grab_frame(ffmpeg: str, source: bytes, height: int, timeout: float = 20) -> bytes:
    """One JPEG frame from the start of `source` (an fMP4 segment with its init section), scaled to
    `height` pixels."""
    out = await _run([ffmpeg, "-hide_banner", "-loglevel", "error", "-i", "pipe:0",
                      "-frames:v", "1", "-vf", f"scale=-2:{height}", "-q:v", "4", "-f", "image2",
                      "-c:v", "mjpeg", "pipe:1"], timeout, stdin=source)
    if not out.startswith(b"\xff\xd8"):
        raise MediaError("ffmpeg produced no JPEG")
    return out
