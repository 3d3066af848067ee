"""Transcoder CPU, the LL-HLS pipeline against the one before it, in the same run.

CPU seconds per second of video, from getrusage of each ffmpeg, for the default ladder's work on
one 720p30 source (what golive.py's `cpuPerLiveStream` measures live, without the encoder's and
the neighbours' noise in the comparison):
- before (commit 1ac2eb2 and earlier): one ffmpeg decoding the source once and encoding 480p with
  x264 `veryfast` to FLV, which nginx-rtmp then cut into MPEG-TS segments;
- now: the LL-HLS transcoders' own command lines (media_gateway.llhls.transcoder.ffmpeg_argv):
  the source copied to fMP4 parts, and 480p with x264 `superfast` to fMP4 parts.
The two alternate, `--rounds` times each, on the same file, so a busy neighbour slows both alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info, progress, write_results
from media_gateway.ingest.nginx_conf import DEFAULT_LADDER, parse_ladder
from media_gateway.llhls.transcoder import ffmpeg_argv

FPS = 30


def source_argv(path: Path, seconds: int) -> list[str]:
    """The golive encoder's picture and settings (720p30 x264 veryfast CBR 2500k, 1 s key frames, AAC)."""
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-pix_fmt", "yuv420p", "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0",
            "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k",
            "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-f", "flv", str(path)]


def before_argv(source: Path, height: int, video_kbps: int, audio_kbps: int) -> list[str]:
    """nginx_conf.transcode()'s exec_push line before LL-HLS (one encoded rendition), reading a file."""
    gop = FPS
    return ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-analyzeduration", "500000", "-probesize", "500000", "-i", str(source),
            "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-profile:v", "main", "-pix_fmt", "yuv420p",
            "-vf", f"scale=-2:{height}", "-fpsmax", str(FPS), "-g", str(gop), "-keyint_min", str(gop),
            "-sc_threshold", "0", "-force_key_frames", "expr:gte(t,n_forced*1)",
            "-b:v", f"{video_kbps}k", "-maxrate", f"{video_kbps}k", "-bufsize", f"{2 * video_kbps}k",
            "-c:a", "aac", "-b:a", f"{audio_kbps}k", "-ar", "44100", "-f", "flv", "-y", "/dev/null"]


def now_argvs(source: Path, ladder) -> list[list[str]]:
    """One ffmpeg per group, as the media gateway starts them (the copied source, the encoded ladder);
    the RTMP-only input options are dropped, the input being a file."""
    groups = [[r for r in ladder if r.height is None], [r for r in ladder if r.height]]
    argvs = []
    for group in (g for g in groups if g):
        argv = ffmpeg_argv("ffmpeg", str(source), [(r, 1) for r in group], fps=FPS)
        for option in ("-rtmp_live", "-tcp_nodelay"):
            if option in argv:
                i = argv.index(option)
                del argv[i:i + 2]
        argvs.append(["/dev/null" if a == "pipe:1" else a for a in argv] + ["-y"])
    return argvs


def cpu_seconds(argv: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of the test source (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each pipeline (default 3)")
    parser.add_argument("--output", default="transcoder_cpu", help="results file name under bench/results/")
    args = parser.parse_args(argv)
    ladder = parse_ladder(os.environ.get("INGEST_LADDER") or DEFAULT_LADDER)
    encoded = [r for r in ladder if r.height]
    if len(encoded) != 1:
        parser.error("the before pipeline is written for a ladder with one encoded rendition (the default)")
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="transcoder-cpu-") as tmp:
        source = Path(tmp) / "source.flv"
        progress(f"encoding a {args.seconds} s 720p30 test source")
        subprocess.run(source_argv(source, args.seconds), check=True, stdin=subprocess.DEVNULL)
        before = before_argv(source, encoded[0].height, encoded[0].video_kbps, encoded[0].audio_kbps)
        now = now_argvs(source, ladder)
        rounds: list[dict] = []
        for i in range(args.rounds):
            started = time.monotonic()
            b = cpu_seconds(before)
            n = [cpu_seconds(a) for a in now]
            rounds.append({"before": round(b / args.seconds, 4), "now": round(sum(n) / args.seconds, 4),
                           "nowPerProcess": [round(x / args.seconds, 4) for x in n]})
            progress(f"round {i + 1}/{args.rounds}: cores per stream before {rounds[-1]['before']}, "
                     f"now {rounds[-1]['now']} ({time.monotonic() - started:.1f} s)")
    before_p50 = statistics.median(r["before"] for r in rounds)
    now_p50 = statistics.median(r["now"] for r in rounds)
    results = {"ladder": [r.name for r in ladder], "sourceSeconds": args.seconds, "rounds": rounds,
               "coresPerStream": {"before": round(before_p50, 4), "now": round(now_p50, 4)},
               "nowOverBefore": round(now_p50 / before_p50, 3),
               "argv": {"before": before, "now": now},
               "note": "CPU seconds per second of video (= cores while live); the packager (the media "
                       "gateway's Python, ~0.02-0.03 cores in golive.json) and nginx-rtmp's HLS muxing "
                       "(before) are not in either figure"}
    path = write_results(args.output, machine, results)
    progress(f"wrote {path}")
    print(f"cores per stream: before {before_p50:.3f}, now {now_p50:.3f} "
          f"(now/before {results['nowOverBefore']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
