"""The web client's chat replay clock (web/replay-sync.js) under Node, with a fake server whose
answers the test releases one by one: messages appear when the playhead passes them, windows are
fetched ahead of it, a seek empties the panel and shows what was said just before the new
position, an answer fetched for a position the viewer left is dropped, a failed window is retried.
The real page and API are in tests/e2e/web/test_chat_replay.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = (Path(__file__).resolve().parents[2] / "web" / "replay-sync.js").as_uri()
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (make setup installs it)")

# messages by offset: m<offset> said <offset> seconds into the stream
PRELUDE = """
import { ReplaySync } from "MODULE_URL";
const msg = (offset, extra = {}) => ({ id: `m${offset}`, seq: Math.round(offset * 10), offsetSeconds: offset, ...extra });
const calls = [];      // [from, to, playhead when asked]
const pending = [];    // fetches the test answers with answer()/fail()
const shown = [];      // what the panel shows, in order
let resets = 0;
let clock = 0;
let serverMessages = [];
const sync = new ReplaySync({
  fetchWindow(from, to) {
    calls.push([from, to, sync.position]);
    return new Promise((resolve, reject) => pending.push({ from, to, resolve, reject }));
  },
  onReset() { shown.length = 0; resets += 1; },
  onAdd(messages) { shown.push(...messages.map((m) => m.id)); },
  now: () => clock,
});
const settle = () => new Promise((r) => setTimeout(r, 0));
async function answer(index = 0) {
  const f = pending.splice(index, 1)[0];
  f.resolve(serverMessages.filter((m) => m.offsetSeconds >= f.from && m.offsetSeconds < f.to));
  await settle();
}
async function fail() { pending.shift().reject(new Error("502")); await settle(); }
// plays from `from` to `to` in timeupdate steps, answering every fetch at once
async function play(from, to, step = 0.25) {
  for (let t = from; t <= to + 1e-9; t += step) {
    sync.tick(Math.round(t * 100) / 100);
    while (pending.length) await answer();
  }
}
const out = {};
""".replace("MODULE_URL", MODULE)


def run(scenario: str) -> dict:
    done = subprocess.run(["node", "--input-type=module", "-e", PRELUDE + scenario + "\nconsole.log(JSON.stringify(out));"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_messages_appear_as_the_playhead_passes_them_and_windows_come_ahead():
    out = run("""
serverMessages = [msg(1), msg(5), msg(20), msg(40), msg(70)];
await play(0, 4.75); out.at4 = [...shown];
await play(5, 39.75); out.at39 = [...shown];
await play(40, 74.75); out.at74 = [...shown];
out.calls = calls; out.resets = resets;
""")
    assert out["at4"] == ["m1"]
    assert out["at39"] == ["m1", "m5", "m20"]
    assert out["at74"] == ["m1", "m5", "m20", "m40", "m70"]
    assert out["resets"] == 1  # the first position only: playing on is no seek
    windows = [(f, t) for f, t, _ in out["calls"]]
    assert windows == [(0, 30), (30, 60), (60, 90)]  # contiguous, each asked once
    for f, _, playhead in out["calls"][1:]:
        assert f - playhead >= 15  # asked while 15 s of the previous window were still to play


def test_a_seek_forward_drops_what_is_behind_and_shows_what_was_said_just_before():
    out = run("""
serverMessages = [msg(1), msg(5), msg(60), msg(95), msg(99), msg(105)];
await play(0, 6); out.before = [...shown];
sync.seek(100);
out.window = calls.at(-1).slice(0, 2);
while (pending.length) await answer();
out.after = [...shown];
await play(100.25, 106);
out.later = [...shown]; out.resets = resets;
""")
    assert out["before"] == ["m1", "m5"]
    assert out["window"] == [70, 130]  # 30 s of backlog, 30 s ahead
    assert out["after"] == ["m95", "m99"]
    assert out["later"] == ["m95", "m99", "m105"]
    assert out["resets"] == 2


def test_an_answer_for_the_position_the_viewer_left_is_dropped():
    out = run("""
serverMessages = [msg(1), msg(5), msg(95), msg(99)];
sync.tick(0);                    // asks for [0, 30) ...
sync.seek(100);                  // ... and the viewer jumps before it answers
out.asked = calls.map((c) => c.slice(0, 2));
await answer(0);                 // the old window arrives late
sync.tick(100.1);
out.afterOld = [...shown];
await answer(0);
out.afterNew = [...shown];
""")
    assert out["asked"] == [[0, 30], [70, 130]]  # the old fetch did not hold the new one back
    assert out["afterOld"] == []
    assert out["afterNew"] == ["m95", "m99"]


def test_a_jump_backwards_seen_by_the_clock_is_a_seek():
    out = run("""
serverMessages = [msg(1), msg(5), msg(20), msg(40)];
await play(0, 41); out.before = [...shown];
sync.tick(3);                    // the video went back without a seeking event reaching us
while (pending.length) await answer();
out.after = [...shown]; out.window = calls.at(-1).slice(0, 2);
""")
    assert out["before"] == ["m1", "m5", "m20", "m40"]
    assert out["window"] == [0, 33]
    assert out["after"] == ["m1"]


def test_a_failed_window_is_asked_again_after_a_pause():
    out = run("""
serverMessages = [msg(1)];
sync.tick(0);
await fail();
sync.tick(0.25); out.callsRightAfter = calls.length;
clock = 2.5;
sync.tick(0.5); out.callsLater = calls.length;
await answer();
sync.tick(1.0); out.shown = [...shown];
""")
    assert out["callsRightAfter"] == 1
    assert out["callsLater"] == 2
    assert out["shown"] == ["m1"]


def test_nothing_is_fetched_past_the_end_and_deleted_or_repeated_messages_are_skipped():
    out = run("""
serverMessages = [msg(1), msg(2, { deletedAt: "2026-01-01T00:00:00Z" }), msg(3), msg(3)];
sync.setEnd(50);
await play(0, 50);
out.windows = calls.map((c) => c.slice(0, 2)); out.shown = [...shown];
""")
    assert out["windows"] == [[0, 30], [30, 60]]
    assert out["shown"] == ["m1", "m3"]
