// The LL-HLS load generator's player decisions (bench/_hlsplayer.mjs): run by
// tests/bench/test_hls_player.py (`node --test`), or alone: node --test tests/bench/hls_player.test.mjs
import assert from 'node:assert/strict';
import test from 'node:test';

import {
  PlaybackBuffer, advanced, nextDirectives, parseMediaPlaylist, partsAfter, startPoint, startPointSegments,
} from '../../bench/_hlsplayer.mjs';

const T0 = Date.parse('2026-12-04T04:00:00.000Z');
const iso = (ms) => new Date(ms).toISOString();

// a playlist as the origin writes it: whole segments of three 1/3 s parts, the open one with
// `open` parts (0: the last part listed ends a whole segment)
function playlist({ whole = 3, open = 2, first = 0, hint = true } = {}) {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:9', '#EXT-X-TARGETDURATION:1',
    '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.020', '#EXT-X-PART-INF:PART-TARGET=0.34000',
    `#EXT-X-MEDIA-SEQUENCE:${first}`, '#EXT-X-MAP:URI="init-0.mp4"'];
  for (let msn = first; msn < first + whole + (open ? 1 : 0); msn++) {
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${iso(T0 + msn * 1000)}`);
    const n = msn < first + whole ? 3 : open;
    for (let i = 0; i < n; i++) {
      lines.push(`#EXT-X-PART:DURATION=0.33333,URI="part-${msn}.${i}.m4s"${i === 0 ? ',INDEPENDENT=YES' : ''}`);
    }
    if (msn < first + whole) lines.push('#EXTINF:1.00000,', `seg-${msn}.m4s`);
  }
  const next = open ? [first + whole, open] : [first + whole, 0];
  if (hint) lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-${next[0]}.${next[1]}.m4s"`);
  return lines.join('\n') + '\n';
}

test('the playlist: whole segments, the open one, parts with their media time, the hint', () => {
  const d = parseMediaPlaylist(playlist({ whole: 3, open: 2 }));
  assert.equal(d.partHoldBack, 1.02);
  assert.equal(d.partTarget, 0.34);
  assert.equal(d.canBlockReload, true);
  assert.deepEqual(d.segments.map((s) => [s.msn, s.uri, s.parts.length]),
    [[0, 'seg-0.m4s', 3], [1, 'seg-1.m4s', 3], [2, 'seg-2.m4s', 3], [3, null, 2]]);
  const p = d.segments[3].parts[1];
  assert.equal(p.uri, 'part-3.1.m4s');
  assert.equal(p.map, 'init-0.mp4');
  assert.equal(p.independent, false);
  assert.ok(Math.abs(p.start - (T0 + 3000 + 333.33)) < 0.01);
  assert.equal(d.preloadHint, 'part-3.2.m4s');
});

test("blocking reload directives are hls.js's: the next part, or part 0 after a whole segment", () => {
  assert.deepEqual(nextDirectives(parseMediaPlaylist(playlist({ whole: 3, open: 2 }))), { msn: 3, part: 2 });
  assert.deepEqual(nextDirectives(parseMediaPlaylist(playlist({ whole: 3, open: 0 }))), { msn: 3, part: 0 });
  // without low-latency mode: the last part a segment has had (hls.js 1.7.4 maxPartIndex), so a
  // reload is held until the open segment reaches it, never answered with what the player has
  assert.deepEqual(nextDirectives(parseMediaPlaylist(playlist({ whole: 3, open: 2 })), false), { msn: 3, part: 2 });
  assert.deepEqual(nextDirectives(parseMediaPlaylist(playlist({ whole: 3, open: 1 })), false), { msn: 3, part: 2 });
  assert.deepEqual(nextDirectives(parseMediaPlaylist(playlist({ whole: 3, open: 0 })), false), { msn: 3, part: 2 });
});

test('a reload that brought nothing new is not advanced (the player then waits, as hls.js does)', () => {
  const before = parseMediaPlaylist(playlist({ whole: 3, open: 1 }));
  assert.equal(advanced(null, before), true);
  assert.equal(advanced(before, parseMediaPlaylist(playlist({ whole: 3, open: 1 }))), false);
  assert.equal(advanced(before, parseMediaPlaylist(playlist({ whole: 3, open: 2 }))), true);
  assert.equal(advanced(before, parseMediaPlaylist(playlist({ whole: 4, open: 0 }))), true);
  // the window moved on (an older segment left) but nothing new arrived: not advanced
  assert.equal(advanced(before, parseMediaPlaylist(playlist({ whole: 2, open: 1, first: 1 }))), false);
});

test('a player starts PART-HOLD-BACK behind the newest part, loading from an independent part', () => {
  const d = parseMediaPlaylist(playlist({ whole: 3, open: 2 }));
  // edge = 3 s + 2 parts; 1.02 s before it lies in segment 2: its first part is the independent one
  const sp = startPoint(d, 1.02);
  assert.ok(Math.abs(sp.startAt - (T0 + 3666.67 - 1020)) < 0.01);
  assert.deepEqual(sp.parts.map((p) => p.uri),
    ['part-2.0.m4s', 'part-2.1.m4s', 'part-2.2.m4s', 'part-3.0.m4s', 'part-3.1.m4s']);
  const legacy = startPointSegments(d, 3);
  assert.deepEqual(legacy.segments.map((s) => s.uri), ['seg-0.m4s', 'seg-1.m4s', 'seg-2.m4s']);
});

test('after a reload only the parts not yet taken are fetched', () => {
  const d = parseMediaPlaylist(playlist({ whole: 3, open: 0 }));
  assert.deepEqual(partsAfter(d, { msn: 2, index: 1 }).map((p) => p.uri), ['part-2.2.m4s']);
  assert.deepEqual(partsAfter(d, { msn: 2, index: 2 }), []);
});

const PART = 1000 / 3;

test('parts arriving as fast as they play: playback starts at the hold-back point and never stalls', () => {
  const b = new PlaybackBuffer({ startAt: 0 });
  b.add(0, 0, PART);
  assert.equal(b.started, true);
  for (let i = 1; i < 30; i++) b.add(i * PART - 50, i * PART, (i + 1) * PART); // each 50 ms early
  b.advance(30 * PART - 60);
  assert.equal(b.stalls, 0);
  assert.equal(b.stalledMs(30 * PART - 60), 0);
});

test('a part later than the buffer lasts is one stall, as long as it was late', () => {
  const b = new PlaybackBuffer({ startAt: 0 });
  b.add(0, 0, 2 * PART); // two parts buffered: the playhead runs dry at 666.7 ms
  b.add(900, 2 * PART, 3 * PART);
  assert.equal(b.stalls, 1);
  assert.ok(Math.abs(b.stallMs - (900 - 2 * PART)) < 0.01);
  assert.ok(Math.abs(b.playhead - 2 * PART) < 0.01); // it waits where the media ended
  b.advance(900 + PART - 1);
  assert.equal(b.stalls, 1);
});

test('no playback before the media at the start point has arrived; a stall is counted while stalled', () => {
  const b = new PlaybackBuffer({ startAt: 500 });
  b.add(0, 0, PART);
  assert.equal(b.started, false);
  b.add(100, PART, 2 * PART);
  assert.equal(b.started, true);
  assert.equal(b.playhead, 500);
  b.advance(1000);
  assert.equal(b.stalls, 1);
  assert.ok(Math.abs(b.stalledMs(1000) - (1000 - (100 + 2 * PART - 500))) < 0.01);
});

test('a hole in the media (a restarted transcoder) is jumped, not waited on', () => {
  const b = new PlaybackBuffer({ startAt: 0 });
  b.add(0, 0, 3 * PART);
  b.add(100, 3 * PART + 2000, 4 * PART + 2000); // the next generation's clock is 2 s later
  b.advance(3 * PART + 200);
  assert.equal(b.gapJumps, 1);
  assert.equal(b.stalls, 0);
  assert.ok(Math.abs(b.playhead - (3 * PART + 2000 + 200)) < 0.01);
});

test('more than liveMaxLatency behind the newest part: the player jumps to its hold-back', () => {
  const b = new PlaybackBuffer({ startAt: 0, maxLatency: 3, holdBack: 1 });
  b.add(0, 0, 5000);
  assert.equal(b.followLive(100, 2900), false);
  assert.equal(b.followLive(200, 4000), true);
  assert.equal(b.playhead, 3000);
  assert.equal(b.liveJumps, 1);
});
