"""Glass-to-glass benchmark: from the moment the encoder captured a frame to the moment the stream
page in a browser presents it, per rendition, with a breakdown per stage.

    .venv/bin/python bench/glass.py [--skip 10] [--window 15] [--ladder source,480p] [--part-seconds S]
                                    [--screenshots DIR]

Starts the whole platform (devstack, free ports, loopback only), registers a creator, goes live and
publishes a 1280x720 30 fps picture (testsrc2) through ffmpeg (x264 veryfast zerolatency, CBR
2500k, a key frame every second, AAC) with the capture time of every frame burnt into its top rows
as a row of black/white blocks (bench/_stamp.py: 32 bits of milliseconds plus a check byte).
Frames are made here and piped to the encoder as raw video at the wall clock's pace, so the stamp
is the time the frame was handed to the encoder: its capture.

Headless Debian Chromium (Playwright, never a downloaded browser) opens the platform's own stream
page, once with the player's automatic choice and once forcing each rendition with the page's
Quality control. An init script follows every frame the <video> presents
(`requestVideoFrameCallback`), copies the stamp band to a canvas, decodes it and keeps
(stamp, expected display time, frame height). The first `--skip` seconds after the page starts
playing (or after the switch) are not counted; the next `--window` seconds are.

The breakdown follows the first frame of every HLS segment (its stamp decoded from the segment's
first part): the recording FLV (encoder -> ingest), that part listed in its rendition's playlist at
the LL-HLS origin (followed with blocking reloads, as a player does: the transcoder, the part's own
length and the packager), then presented by the page (gateway, player fetch and buffer).
Writes bench/results/glass.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from servicekit.logging import redact_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, platform_stack, progress, write_results
from _stamp import band_height, decode_row, stamp_row
from golive import Creator

WIDTH, HEIGHT, FPS, KEYINT = 1280, 720, 30, 1.0
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
FILE_POLL = 0.02  # seconds between looks at HLS_ROOT and the recording: the breakdown's resolution

# Runs in the page before its own scripts: every <video> the page makes is followed frame by frame.
# Only the middle row of the stamp band is drawn, shrunk to 4 px per block, so reading it back
# costs little even in software-rendered headless Chromium.
PROBE = """
(() => {
  const BITS = 40, PX = 4;
  const glass = window.__glass = {frames: [], bad: 0};
  const canvas = document.createElement('canvas');
  canvas.width = BITS * PX; canvas.height = 1;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const follow = (video) => {
    const onFrame = (now, meta) => {
      const w = meta.width || video.videoWidth, h = meta.height || video.videoHeight;
      if (w && h) {
        const band = Math.max(8, Math.round(h * 32 / 720));
        ctx.drawImage(video, 0, Math.floor(band / 2), w, 1, 0, 0, BITS * PX, 1);
        const d = ctx.getImageData(0, 0, BITS * PX, 1).data;
        let value = 0, check = 0;
        for (let i = 0; i < BITS; i++) {
          const p = (i * PX + PX / 2) * 4;
          const bit = (d[p] + d[p + 1] + d[p + 2]) / 3 >= 128 ? 1 : 0;
          if (i < 32) value = value * 2 + bit; else check = check * 2 + bit;
        }
        const sum = (Math.floor(value / 16777216) & 255) + (Math.floor(value / 65536) & 255)
                  + (Math.floor(value / 256) & 255) + (value & 255);
        if ((sum & 255) === check) glass.frames.push([value, performance.timeOrigin + meta.expectedDisplayTime, h]);
        else glass.bad += 1;
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  const seen = new WeakSet();
  setInterval(() => {
    for (const v of document.querySelectorAll('video')) if (!seen.has(v)) { seen.add(v); follow(v); }
  }, 50);
})();
"""


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50": None, "p90": None, "max": None, "min": None}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 9
    return {"count": len(ordered), "p50": round(statistics.median(ordered), 3), "p90": round(q[8], 3),
            "max": round(ordered[-1], 3), "min": round(ordered[0], 3)}


class StampedEncoder:
    """ffmpeg encoding frames this process makes, each stamped with its capture time."""

    def __init__(self, rtmp_url: str):
        self.rtmp_url = rtmp_url
        self.stamps: list[int] = []  # frame index -> ms since epoch_ms
        self.epoch_ms = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.process: subprocess.Popen | None = None
        self._stderr = None

    def argv(self) -> list[str]:
        gop = round(FPS * KEYINT)
        return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "pipe:0",
                "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-map", "0:v", "-map", "1:a",
                "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
                "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k",
                "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-tcp_nodelay", "1", "-f", "flv", self.rtmp_url]

    def start(self) -> None:
        # one second of testsrc2 (it loops every second anyway) as the moving background
        raw = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}",
                              "-frames:v", str(FPS), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                             capture_output=True, check=True).stdout
        size = WIDTH * HEIGHT * 3 // 2
        band = band_height(HEIGHT)
        # everything below the band's luma rows, with the band's chroma neutral (black and white,
        # not tinted by the pattern underneath)
        chroma_band = (WIDTH // 2) * (band // 2)
        plane = (WIDTH // 2) * (HEIGHT // 2)
        self._backgrounds = []
        for i in range(FPS):
            frame = raw[i * size:(i + 1) * size]
            u, v = frame[WIDTH * HEIGHT:WIDTH * HEIGHT + plane], frame[WIDTH * HEIGHT + plane:]
            self._backgrounds.append(frame[WIDTH * band:WIDTH * HEIGHT]
                                     + b"\x80" * chroma_band + u[chroma_band:] + b"\x80" * chroma_band + v[chroma_band:])
        self._band = band
        # its complaints go to a file and reach the terminal redacted: ffmpeg names the publish URL,
        # which ends in the stream key, in every error
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.argv(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=self._stderr)
        self.epoch_ms = int(time.time() * 1000)
        self._thread = threading.Thread(target=self._feed, name="stamped-encoder", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        epoch = self.epoch_ms / 1000
        n = 0
        pipe = self.process.stdin
        try:
            while not self._stop.is_set():
                delay = epoch + n / FPS - time.time()
                if delay > 0:
                    time.sleep(delay)
                stamp = int(time.time() * 1000) - self.epoch_ms
                self.stamps.append(stamp)
                pipe.write(stamp_row(stamp, WIDTH) * self._band)
                pipe.write(self._backgrounds[n % FPS])
                n += 1
        except (BrokenPipeError, ValueError):
            pass  # the ingest dropped the publish (stream ended)

    def stop(self) -> None:
        """Ends the publish as an encoder's Stop button does: the input closes and ffmpeg writes
        its trailer while the ingest still listens (killing it, or ending the stream first, left a
        broken pipe). Safe to call twice."""
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self.process is None:
            return
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self._stderr is not None:
            self._stderr.seek(0)
            said = self._stderr.read().decode(errors="replace").strip()
            self._stderr.close()
            self._stderr = None
            if said:
                progress("encoder: " + redact_text(said))


class FileWatcher:
    """Follows the recording file and the LL-HLS origin: when each FLV video tag of the recording
    appeared, and when each part was first listed in its rendition's playlist (followed as a player
    does, with blocking reloads for the next part, straight at the origin: the gateway's cache is
    not in the way). The first part of every segment is kept (with its init section) to decode the
    stamp of its first frame afterwards."""

    def __init__(self, origin_url: str, record_root: Path, session: str, master_path: str):
        self.origin_url, self.record_root, self.session = origin_url.rstrip("/"), record_root, session
        self.master_path = master_path  # /hls/<node>/<session>/index.m3u8
        self.flv_tags: list[tuple[int, float]] = []  # (timestamp ms, wall seconds first seen)
        self.segments: dict[tuple[str, str], dict] = {}  # (rendition, first part's name) -> facts
        self._stop = threading.Event()
        self._flv_offset = 13  # FLV header + PreviousTagSize0
        self._threads = [threading.Thread(target=self._run_flv, name="flv-watcher", daemon=True)]

    def start(self) -> None:
        master = httpx.get(f"{self.origin_url}{self.master_path}", timeout=10).text
        for path in re.findall(r"^(/hls/\S+)/index\.m3u8$", master, re.MULTILINE):
            rendition = path.rsplit("/", 1)[1]
            self._threads.append(threading.Thread(target=self._follow, args=(rendition, path),
                                                  name=f"follow-{rendition}", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run_flv(self) -> None:
        while not self._stop.is_set():
            self._poll_flv(time.time())
            time.sleep(FILE_POLL)

    def _poll_flv(self, now: float) -> None:
        path = self.record_root / f"{self.session}_src.flv"
        try:
            with path.open("rb") as f:
                f.seek(self._flv_offset)
                data = f.read()
        except OSError:
            return
        pos = 0
        while len(data) - pos >= 11:
            kind, size = data[pos], int.from_bytes(data[pos + 1:pos + 4], "big")
            if len(data) - pos < 11 + size + 4:
                break
            ts = int.from_bytes(data[pos + 4:pos + 7], "big") | data[pos + 7] << 24
            # video tags carrying frames (AVCPacketType 1), not the codec header or end of sequence
            if kind == 9 and size >= 2 and data[pos + 12] == 1:
                self.flv_tags.append((ts, now))
            pos += 11 + size + 4
        self._flv_offset += pos

    def _follow(self, rendition: str, path: str) -> None:
        base = f"{self.origin_url}{path}"
        seen: set[str] = set()
        inits: dict[str, bytes] = {}
        query = ""
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                try:
                    r = http.get(f"{base}/index.m3u8{query}")
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                now = time.time()
                if r.status_code != 200:
                    query = ""
                    time.sleep(0.1)
                    continue
                text = r.text
                init = None
                for line in text.splitlines():
                    if line.startswith("#EXT-X-MAP:"):
                        init = re.search(r'URI="([^"]+)"', line)[1]
                    m = re.match(r'#EXT-X-PART:.*URI="([^"]+)"(,INDEPENDENT=YES)?', line)
                    if m is None or m[1] in seen:
                        continue
                    seen.add(m[1])
                    if m[2] and init is not None:  # the first part of a segment: keep it to decode
                        if init not in inits:
                            inits[init] = http.get(f"{base}/{init}").content
                        self.segments[(rendition, m[1])] = {
                            "created": None, "listed": now, "bytes": inits[init] + http.get(f"{base}/{m[1]}").content}
                hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.(\d+)\.m4s"', text)
                if hint is None:
                    return  # the stream ended
                query = f"?_HLS_msn={hint[1]}&_HLS_part={hint[2]}"


def first_frame_stamp(segment: bytes) -> tuple[int | None, int | None]:
    """(stamp of the segment's first frame, its height), decoded from the picture."""
    probe = subprocess.run(["ffmpeg", "-hide_banner", "-v", "info", "-i", "pipe:0", "-frames:v", "1", "-f", "rawvideo",
                            "-pix_fmt", "gray", "-vf", "showinfo", "pipe:1"], input=segment, capture_output=True, check=False)
    if probe.returncode != 0 or not probe.stdout:
        return None, None
    size = re.search(r"s:(\d+)x(\d+)", probe.stderr.decode(errors="replace"))
    if not size:
        return None, None
    w, h = int(size[1]), int(size[2])
    row = band_height(h) // 2
    return decode_row(probe.stdout[row * w:(row + 1) * w], w), h


async def watch_page(browser, base_url: str, slug: str, mode: str, skip: float, window: float,
                     screenshots: Path | None) -> dict:
    """One page: play, force `mode` (a Quality option, or "auto"), skip, then collect frames."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base_url)
    try:
        await ctx.add_init_script(PROBE)
        page = await ctx.new_page()
        await page.goto(f"/streams/{slug}")
        video = page.locator("video")
        await video.wait_for(timeout=20_000)
        started = time.monotonic()
        while await video.evaluate("v => v.currentTime") <= 0:
            if time.monotonic() - started > 30:
                raise RuntimeError(f"{mode}: the page never started playing")
            await asyncio.sleep(0.1)
        if mode != "auto":
            quality = page.get_by_label("Quality")
            labels = await quality.locator("option").all_text_contents()
            label = next((x for x in labels[1:] if (x.startswith("Source") if mode == "source" else x == mode)), None)
            if label is None:
                raise RuntimeError(f"no Quality option for {mode}: {labels}")
            await quality.select_option(label=label)
        await asyncio.sleep(skip)
        await page.evaluate("() => { window.__glass.frames = []; window.__glass.bad = 0; }")
        t_from = time.time()
        await asyncio.sleep(window)
        result = await page.evaluate("() => ({frames: window.__glass.frames, bad: window.__glass.bad})")
        t_until = time.time()
        info = await page.evaluate("""() => { const v = document.querySelector('video');
            const b = v.buffered; return {height: v.videoHeight, currentTime: v.currentTime,
            bufferEnd: b.length ? b.end(b.length - 1) : null, dropped: v.getVideoPlaybackQuality().droppedVideoFrames,
            quality: document.querySelector('.quality-select')?.selectedOptions[0]?.textContent,
            playerLatency: Number(document.querySelector('.behind-live')?.dataset.latency) || null}; }""")
        if screenshots:
            screenshots.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(screenshots / f"glass-{mode}.png"))
        # the machine is shared: a software-decoding browser starved of CPU presents few frames late
        return {"mode": mode, "from": t_from, "until": t_until, **result, "end": info,
                "loadAverage": [round(x, 2) for x in os.getloadavg()]}
    finally:
        await ctx.close()


def stage_breakdown(watcher: FileWatcher, encoder: StampedEncoder, pages: list[dict]) -> dict:
    """Per rendition: for the first frame of each segment, how long each stage took (seconds)."""
    epoch = encoder.epoch_ms / 1000
    flv = watcher.flv_tags
    # where each presented frame was shown, by (stamp, height)
    shown: dict[tuple[int, int], float] = {}
    for page in pages:
        for stamp, display_ms, h in page["frames"]:
            shown.setdefault((stamp, h), display_ms / 1000)
    stamp_index = {s: i for i, s in enumerate(encoder.stamps)}
    # only segments a measured window could have shown (decoding each costs an ffmpeg run)
    windows = [(page["from"] - 10, page["until"]) for page in pages]
    per_rendition: dict[str, dict[str, list[float]]] = {}
    for (rendition, _name), seg in sorted(watcher.segments.items()):
        if not seg.get("bytes") or not any(start <= seg["listed"] <= end for start, end in windows):
            continue
        stamp, h = first_frame_stamp(seg["bytes"])
        if stamp is None or stamp not in stamp_index:
            continue
        captured = epoch + stamp / 1000
        # the FLV tag of that frame: its timestamp is the frame's index at 30 fps
        ts = stamp_index[stamp] * 1000 / FPS
        arrived = min((wall for t, wall in flv if abs(t - ts) <= 17), default=None)
        name = rendition.split("_src", 1)[1].lstrip("_") or "source"
        stages = per_rendition.setdefault(name, {k: [] for k in (
            "encoderToIngest", "ingestToPartListed", "partListedToDisplay", "total")})
        if arrived is not None:
            stages["encoderToIngest"].append(arrived - captured)
            stages["ingestToPartListed"].append(seg["listed"] - arrived)
        if (stamp, h) in shown:
            stages["partListedToDisplay"].append(shown[(stamp, h)] - seg["listed"])
            stages["total"].append(shown[(stamp, h)] - captured)
    return {name: {stage: percentiles(values) for stage, values in stages.items()}
            for name, stages in per_rendition.items()}


async def bench(stack, modes: list[str], skip: float, window: float, screenshots: Path | None) -> dict:
    from playwright.async_api import async_playwright

    base_url = f"http://127.0.0.1:{stack.config.gateway_port}"
    rtmp_base = f"rtmp://127.0.0.1:{stack.config.rtmp_port}/live"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as api:
        creator = await Creator(api).setup()
        stream_id = await creator.go_live()
        encoder = StampedEncoder(f"{rtmp_base}/{creator.key}")
        encoder.start()
        watcher = None
        try:
            deadline = time.monotonic() + 30
            while not (stream := (await api.get(f"/api/streams/{stream_id}")).json()).get("hlsUrl"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the stream never got an HLS URL: {stream}")
                await asyncio.sleep(0.1)
            session = stream["hlsUrl"].rstrip("/").split("/")[-2]
            master_path = urlsplit(stream["hlsUrl"]).path
            origin = f"http://127.0.0.1:{stack.config.service_ports['media-gateway']}"
            deadline = time.monotonic() + 30
            while (await api.get(f"{origin}{master_path}")).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the origin never served the master playlist")
                await asyncio.sleep(0.1)
            watcher = FileWatcher(origin, stack.config.data_dir / "recordings", session, master_path)
            watcher.start()
            pages = []
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    for mode in modes:
                        page = await watch_page(browser, base_url, creator.channel["slug"], mode, skip, window,
                                                screenshots)
                        pages.append(page)
                        lat = [(d / 1000 - (encoder.epoch_ms + s) / 1000) for s, d, _h in page["frames"]]
                        progress(f"{mode}: {len(lat)} frames decoded ({page['bad']} unreadable), "
                                 f"glass-to-glass {percentiles(lat)}; at the end {page['end']}")
                finally:
                    await browser.close()
            encoder.stop()
            await creator.end(stream_id)
        finally:
            if watcher:
                watcher.stop()
            encoder.stop()
    renditions = {}
    for page in pages:
        by_height: dict[int, list[float]] = {}
        for stamp, display_ms, h in page["frames"]:
            by_height.setdefault(h, []).append(display_ms / 1000 - (encoder.epoch_ms + stamp) / 1000)
        renditions[page["mode"]] = {
            "framesDecoded": len(page["frames"]), "framesUnreadable": page["bad"],
            "glassToGlass": percentiles([x for xs in by_height.values() for x in xs]),
            "byHeight": {str(h): percentiles(xs) for h, xs in sorted(by_height.items())},
            "atEnd": page["end"], "loadAverageAtEnd": page["loadAverage"],
        }
    return {"renditions": renditions, "stages": stage_breakdown(watcher, encoder, pages),
            "encoder": {"argv": encoder.argv()[:-1] + ["rtmp://<ingest>/live/<key>"],
                        "framesSent": len(encoder.stamps)}}


def transcoder_events(log: Path) -> list[dict]:
    """What the media gateway said about its transcoders (exits, restarts for lag): a rendition that
    restarted mid-run shows as a discontinuity on the page."""
    events = []
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return events
    for line in lines:
        if '"logger":"media_gateway.llhls' in line and ('"level":"warning"' in line or "exited" in line):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            events.append({k: record.get(k) for k in ("time", "message", "exitCode", "lagSeconds", "rendition",
                                                      "stderr") if record.get(k) is not None})
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", type=float, default=10.0, help="seconds of playback not counted (default 10)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds counted per rendition (default 15)")
    parser.add_argument("--ladder", default=None, help="INGEST_LADDER (default: the platform's)")
    parser.add_argument("--part-seconds", type=float, default=None,
                        help="LLHLS_PART_SECONDS: the LL-HLS part length (default: the platform's)")
    parser.add_argument("--screenshots", type=Path, default=None, help="a folder for a screenshot per rendition")
    parser.add_argument("--output", default="glass", help="results file name under bench/results/")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} is missing: install Debian's chromium package (never a downloaded browser)")

    from media_gateway.ingest.nginx_conf import DEFAULT_LADDER, parse_ladder

    ladder = args.ladder or os.environ.get("INGEST_LADDER") or DEFAULT_LADDER
    os.environ["INGEST_LADDER"] = ladder
    modes = ["auto", *(r.name for r in parse_ladder(ladder))]
    machine = machine_info()
    extra_env = {"LLHLS_PART_SECONDS": str(args.part_seconds)} if args.part_seconds else {}
    with platform_stack(extra_env) as stack:
        results = asyncio.run(bench(stack, modes, args.skip, args.window, args.screenshots))
        results["transcoderEvents"] = transcoder_events(stack.config.data_dir / "logs" / "media-gateway.log")
    payload = {"ladder": ladder, "partSeconds": args.part_seconds, "skipSeconds": args.skip, "windowSeconds": args.window,
               "player": "the stream page's default player (web/player.js: hls.js, lowLatencyMode)",
               "filePollSeconds": FILE_POLL,
               **results}
    path = write_results(args.output, machine, payload)
    progress(f"wrote {path}")
    for mode, r in results["renditions"].items():
        g = r["glassToGlass"]
        progress(f"  {mode:8s} glass-to-glass p50 {g['p50']}s p90 {g['p90']}s max {g['max']}s ({g['count']} frames)")
    for name, stages in results["stages"].items():
        progress(f"  {name:8s} " + ", ".join(f"{k} {v['p50']}s" for k, v in stages.items()))
    return 0 if all(r["glassToGlass"]["count"] for r in results["renditions"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
