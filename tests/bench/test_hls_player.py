"""The LL-HLS load generator's player decisions (bench/_hlsplayer.mjs, JavaScript: the generator is
Node.js): its own tests (`node --test`), and its reading of playlists as the origin's writer
(media_gateway.llhls.playlist) really renders them."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from media_gateway.llhls.playlist import MediaPlaylist

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")

READ = """
import { nextDirectives, parseMediaPlaylist, startPoint } from './bench/_hlsplayer.mjs';
let text = '';
for await (const chunk of process.stdin) text += chunk;
const d = parseMediaPlaylist(text);
const sp = startPoint(d, d.partHoldBack);
console.log(JSON.stringify({next: nextDirectives(d), holdBack: d.partHoldBack, hint: d.preloadHint,
  segments: d.segments.map((s) => [s.msn, s.uri, s.parts.length]), start: sp.parts.map((p) => p.uri),
  startAt: sp.startAt, firstPartStart: d.segments[0].parts[0]?.start ?? null}));
"""


def test_the_player_logic_tests_pass():
    run = subprocess.run(["node", "--test", str(ROOT / "tests" / "bench" / "hls_player.test.mjs")],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout


def read(playlist: str) -> dict:
    run = subprocess.run(["node", "--input-type=module", "-e", READ], input=playlist, capture_output=True,
                         text=True, timeout=30, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def written(parts: list[bool], part: float = 1 / 3) -> tuple[MediaPlaylist, datetime]:
    """The origin's playlist after these parts (True: starts with a key frame)."""
    start = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
    playlist = MediaPlaylist(part_target=0.34, segment_target=1.0, window=6)
    for i, independent in enumerate(parts):
        playlist.add_part(part, independent, start + timedelta(seconds=i * part))
    return playlist, start


def test_it_reads_the_origins_playlist_and_asks_for_the_next_part():
    playlist, start = written([True, False, False] * 3 + [True, False])
    seen = read(playlist.render())
    assert seen["segments"] == [[0, "seg-0.m4s", 3], [1, "seg-1.m4s", 3], [2, "seg-2.m4s", 3], [3, None, 2]]
    assert seen["next"] == {"msn": 3, "part": 2}
    assert seen["hint"] == "part-3.2.m4s"
    assert seen["holdBack"] == pytest.approx(1.02)
    # 1.02 s before the newest part's end lies in segment 2: loading starts at its key frame
    assert seen["start"] == ["part-2.0.m4s", "part-2.1.m4s", "part-2.2.m4s", "part-3.0.m4s", "part-3.1.m4s"]
    edge = start.timestamp() * 1000 + 11 * 1000 / 3
    assert seen["startAt"] == pytest.approx(edge - 1020, abs=2)


def test_after_a_full_segment_it_asks_for_the_next_segments_first_part_as_the_hint_names():
    # the open segment holds its target duration: the origin hints the next segment's first part
    playlist, _ = written([True, False, False] * 3 + [True, False, False])
    seen = read(playlist.render())
    assert seen["hint"] == "part-4.0.m4s"
    # hls.js asks for the part after the last listed one; the origin answers it as part 4.0 (RFC 6.2.5.2)
    assert seen["next"] == {"msn": 3, "part": 3}
    assert playlist.wants(3, 3).name == "WAIT"
