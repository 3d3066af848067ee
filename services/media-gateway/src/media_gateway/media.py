"""ffmpeg and ffprobe, run as subprocesses without blocking the event loop.

Arguments are passed as a list (never through a shell) and only ever contain paths the service
built itself from opaque session ids, never a stream key.
"""

from __future__ import annotations

import asyncio
import json
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


# what must match for recordings to be joined without re-encoding: a decoder set up by the first
# part's headers has to decode every later part's frames (the codec private data, the SPS/PPS of
# H.264 or the AudioSpecificConfig of AAC, is compared by its hash)
STREAM_SIGNATURE = ("codec_type", "codec_name", "profile", "width", "height", "pix_fmt", "sample_rate",
                    "channels", "channel_layout", "extradata_hash")


async def probe_streams(ffprobe: str, path: Path, timeout: float = 60) -> list[dict]:
    """The first video and audio stream of a file as ffprobe describes them (STREAM_SIGNATURE's
    fields), video first."""
    out = await _run([ffprobe, "-v", "error", "-show_data_hash", "MD5",
                      "-show_entries", f"stream={','.join(STREAM_SIGNATURE)}", "-of", "json",
                      str(path)], timeout)
    try:
        data = json.loads(out)
    except ValueError:
        raise MediaError(f"ffprobe described {path.name} in no JSON") from None
    streams = {}
    for stream in data.get("streams", []):
        kind = stream.get("codec_type")
        if kind in ("video", "audio") and kind not in streams:
            streams[kind] = {key: stream.get(key) for key in STREAM_SIGNATURE}
    return [streams[kind] for kind in ("video", "audio") if kind in streams]


def can_copy(parts: list[list[dict]]) -> bool:
    """Whether the concat demuxer may join these parts as they are (`-c copy`): every part has the
    same streams with the same parameters. Otherwise only a re-encode gives one playable file."""
    return bool(parts) and all(streams == parts[0] for streams in parts[1:]) and bool(parts[0])


async def concat_copy(ffmpeg: str, sources: list[Path], target: Path, timeout: float = 3600) -> None:
    """Join MP4s of one encoder end to end without re-encoding (the concat demuxer)."""
    listing = target.with_name(f"{target.name}.txt")
    # concat's own quoting: the paths are ours (opaque ids), but a quote would still end the name
    listing.write_text("".join("file '{}'\n".format(str(p).replace("'", "'\\''")) for p in sources))
    try:
        await _write_atomically(target, [
            ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
            "-i", str(listing), "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy"], timeout)
    finally:
        listing.unlink(missing_ok=True)


async def concat_reencode(ffmpeg: str, sources: list[tuple[Path, list[dict], float]], target: Path,
                          timeout: float = 4 * 3600) -> None:
    """Join parts whose encoder settings differ: each is scaled and padded to the first part's
    picture, resampled to one audio format, and the whole is encoded once (H.264/AAC). A part
    without audio (or video) gets silence (or black) for its length, so the parts stay in step.

    `sources`: (file, its probe_streams, its duration) in play order."""
    videos = [next((s for s in streams if s["codec_type"] == "video"), None) for _, streams, _ in sources]
    has_video = any(videos)
    has_audio = any(any(s["codec_type"] == "audio" for s in streams) for _, streams, _ in sources)
    first = next((v for v in videos if v), None)
    width, height = (int(first["width"]) // 2 * 2, int(first["height"]) // 2 * 2) if first else (0, 0)
    inputs: list[str] = []
    graph: list[str] = []
    pads: list[str] = []
    extra = len(sources)
    for index, (path, streams, duration) in enumerate(sources):
        inputs += ["-i", str(path)]
        kinds = {s["codec_type"] for s in streams}
        if has_video:
            if "video" in kinds:
                graph.append(f"[{index}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease,"
                             f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v{index}]")
            else:
                graph.append(f"color=c=black:s={width}x{height}:d={duration:.3f},format=yuv420p[v{index}]")
            pads.append(f"[v{index}]")
        if has_audio:
            if "audio" in kinds:
                source = f"[{index}:a:0]"
            else:
                inputs += ["-f", "lavfi", "-t", f"{duration:.3f}", "-i", "anullsrc=r=48000:cl=stereo"]
                source = f"[{extra}:a]"
                extra += 1
            graph.append(f"{source}aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a{index}]")
            pads.append(f"[a{index}]")
    outputs = ("[v]" if has_video else "") + ("[a]" if has_audio else "")
    graph.append(f"{''.join(pads)}concat=n={len(sources)}:v={int(has_video)}:a={int(has_audio)}{outputs}")
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *inputs,
            "-filter_complex", ";".join(graph)]
    if has_video:
        argv += ["-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]
    if has_audio:
        argv += ["-map", "[a]", "-c:a", "aac", "-b:a", "128k"]
    await _write_atomically(target, argv, timeout)


async def _write_atomically(target: Path, argv: list[str], timeout: float) -> None:
    """Run ffmpeg into a partial file and rename it to `target` (moov up front)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        await _run([*argv, "-movflags", "+faststart", "-f", "mp4", str(partial)], timeout)
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
