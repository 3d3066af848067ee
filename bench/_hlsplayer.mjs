// What a simulated LL-HLS player decides, as hls.js 1.7 (the stream page's player) does: the media
// playlist as it reads it, the delivery directives of its next blocking reload, where it starts
// and which parts it fetches, and a buffer that plays in real time and says when it would have
// emptied (a stall). Pure logic, no I/O: bench/_hlsload.mjs drives it, tests/bench/hls_player.test.mjs
// checks it.
//
// Media time is the wall clock of the frames (EXT-X-PROGRAM-DATE-TIME of a segment plus the
// durations of its earlier parts), in ms since the epoch: the same for every rendition and every
// player, so "behind live" is one subtraction, and a transcoder restart (a new generation whose
// clock starts again at the wall clock) shows as a gap the player jumps, as hls.js's gap
// controller does.

const ATTR = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;

function attributes(text) {
  const out = {};
  for (const m of text.matchAll(ATTR)) out[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1) : m[2];
  return out;
}

// -> {targetDuration, partTarget, partHoldBack, holdBack, canBlockReload, mediaSequence, ended,
//     segments: [{msn, start, uri|null (open segment), map (its init section), duration, parts: [{msn, index, uri, duration,
//     independent, start}]}], preloadHint}
// Part and segment `start` are media time (ms); a segment without a PROGRAM-DATE-TIME follows the
// previous one.
export function parseMediaPlaylist(text) {
  const out = { targetDuration: 0, partTarget: 0, partHoldBack: 0, holdBack: 0, canBlockReload: false,
    mediaSequence: 0, ended: false, segments: [], preloadHint: null };
  let open = null; // the segment being read (its parts so far)
  let pdt = null;
  let map = null;
  const next = () => {
    if (open === null) {
      const prev = out.segments[out.segments.length - 1];
      const msn = prev ? prev.msn + 1 : out.mediaSequence;
      const start = pdt ?? (prev ? prev.start + prev.duration * 1000 : 0);
      open = { msn, start, uri: null, map, duration: 0, parts: [] };
      pdt = null;
    }
    return open;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const colon = line.indexOf(':');
    const tag = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1);
    switch (tag) {
      case '#EXT-X-TARGETDURATION': out.targetDuration = Number(value); break;
      case '#EXT-X-MEDIA-SEQUENCE': out.mediaSequence = Number(value); break;
      case '#EXT-X-PART-INF': out.partTarget = Number(attributes(value)['PART-TARGET']); break;
      case '#EXT-X-SERVER-CONTROL': {
        const a = attributes(value);
        out.canBlockReload = a['CAN-BLOCK-RELOAD'] === 'YES';
        out.partHoldBack = Number(a['PART-HOLD-BACK'] ?? 0);
        out.holdBack = Number(a['HOLD-BACK'] ?? 0);
        break;
      }
      case '#EXT-X-PROGRAM-DATE-TIME':
        pdt = Date.parse(value);
        if (open && open.parts.length === 0) { open.start = pdt; pdt = null; }
        break;
      case '#EXT-X-PART': {
        const a = attributes(value);
        const seg = next();
        const start = seg.start + seg.parts.reduce((s, p) => s + p.duration, 0) * 1000;
        seg.parts.push({ msn: seg.msn, index: seg.parts.length, uri: a.URI, map: seg.map, duration: Number(a.DURATION),
          independent: a.INDEPENDENT === 'YES', start });
        break;
      }
      case '#EXTINF': next().duration = Number(value.split(',')[0]); break;
      case '#EXT-X-PRELOAD-HINT': {
        const a = attributes(value);
        if (a.TYPE === 'PART') out.preloadHint = a.URI;
        break;
      }
      case '#EXT-X-MAP': map = attributes(value).URI; break;
      case '#EXT-X-ENDLIST': out.ended = true; break;
      default:
        if (!line.startsWith('#')) { // a whole segment's URI closes it
          const seg = next();
          seg.uri = line;
          out.segments.push(seg);
          open = null;
        }
    }
  }
  if (open && open.parts.length) { // the open segment: parts only, no URI yet
    open.duration = open.parts.reduce((s, p) => s + p.duration, 0);
    out.segments.push(open);
  }
  return out;
}

// hls.js's names: endSN (the last whole segment), lastPartSn/lastPartIndex (the last listed part)
export function edges(details) {
  const whole = details.segments.filter((s) => s.uri !== null);
  const endSN = whole.length ? whole[whole.length - 1].msn : details.mediaSequence - 1;
  const withParts = details.segments.filter((s) => s.parts.length);
  const last = withParts[withParts.length - 1];
  return { endSN, lastPartSn: last ? last.msn : endSN, lastPartIndex: last ? last.parts.length - 1 : -1 };
}

// The `_HLS_msn`/`_HLS_part` of the next blocking reload (hls.js 1.7.4 base-playlist-controller
// playlistLoaded): the next part after the last listed one, or, when the last listed part ends a
// whole segment, part 0 of the next segment. Without low-latency mode hls.js asks for the last
// part of a segment: the highest part index any listed segment reached (`maxPartIndex`) of the
// open segment, or the last part index of the next one after a timer. {msn, part|undefined}
export function nextDirectives(details, lowLatencyMode = true) {
  const { endSN, lastPartSn, lastPartIndex } = edges(details);
  if (lastPartIndex === -1) return { msn: endSN + 1, part: undefined };
  if (lastPartSn === endSN) return { msn: endSN + 1, part: lowLatencyMode ? 0 : lastPartIndex };
  return { msn: lastPartSn, part: lowLatencyMode ? lastPartIndex + 1 : maxPartIndex(details, lastPartIndex) };
}

function maxPartIndex(details, lastPartIndex) {
  let max = lastPartIndex;
  for (const s of details.segments) if (s.parts.length - 1 > max) max = s.parts.length - 1;
  return max;
}

// Whether a reload brought anything new (hls.js's `details.advanced`: a later segment or part).
// hls.js sends the next blocking reload at once only after one that advanced; after one that did
// not it waits half a target duration (computeReloadInterval, "miss half average"), as the HLS
// spec says a client must, so a reload answered early never turns into a loop of requests.
export function advanced(previous, details) {
  if (!previous) return true;
  const a = edges(previous);
  const b = edges(details);
  return b.endSN > a.endSN || b.lastPartSn > a.lastPartSn
    || (b.lastPartSn === a.lastPartSn && b.lastPartIndex > a.lastPartIndex);
}

export function allParts(details) {
  return details.segments.flatMap((s) => s.parts);
}

// The live edge: the end of the newest listed part (or whole segment), media time.
export function liveEdge(details) {
  const last = details.segments[details.segments.length - 1];
  if (!last) return null;
  const parts = last.parts;
  if (parts.length) {
    const p = parts[parts.length - 1];
    return p.start + p.duration * 1000;
  }
  return last.start + last.duration * 1000;
}

// Where a low-latency player starts: `holdBack` seconds behind the live edge, loading from the
// independent part at or before that point (hls.js getNextPart: the first part it loads of a
// segment is an independent one). -> {startAt (media time), parts: the parts to fetch, in order}
export function startPoint(details, holdBack) {
  const parts = allParts(details);
  const edge = liveEdge(details);
  if (!parts.length || edge === null) return null;
  const startAt = Math.max(parts[0].start, edge - holdBack * 1000);
  let first = -1;
  for (let i = 0; i < parts.length; i++) {
    if (parts[i].start > startAt) break;
    if (parts[i].independent) first = i;
  }
  if (first === -1) first = parts.findIndex((p) => p.independent);
  if (first === -1) return null;
  return { startAt: Math.max(startAt, parts[first].start), parts: parts.slice(first) };
}

// A player without low-latency mode: whole segments, `holdBack` seconds (HOLD-BACK, default three
// target durations) behind the end of the last whole segment.
export function startPointSegments(details, holdBack) {
  const whole = details.segments.filter((s) => s.uri !== null);
  if (!whole.length) return null;
  const last = whole[whole.length - 1];
  const end = last.start + last.duration * 1000;
  const startAt = Math.max(whole[0].start, end - holdBack * 1000);
  let first = 0;
  for (let i = 0; i < whole.length; i++) if (whole[i].start <= startAt) first = i;
  return { startAt, segments: whole.slice(first) };
}

// Parts listed after `after` ({msn, index} of the last one taken; null: none yet), in order.
export function partsAfter(details, after) {
  return allParts(details).filter((p) => after === null || p.msn > after.msn
    || (p.msn === after.msn && p.index > after.index));
}

// The playback buffer. Media arrives as [start, end) ranges (ms of media time); the playhead
// moves at real time from `startAt` once the media there has arrived. When it reaches the end of
// what has arrived the buffer is empty: a stall, until more arrives. A hole between two ranges
// (a transcoder restart) is jumped, as hls.js's gap controller does. Past `maxLatency` seconds
// behind the live edge the player jumps to `holdBack` behind it (hls.js liveMaxLatencyDuration).
// Every method takes the wall-clock time `now` (ms) of the event.
export class PlaybackBuffer {
  constructor({ startAt, maxLatency = 3, holdBack = 1, tolerance = 40 } = {}) {
    this.startAt = startAt;
    this.maxLatency = maxLatency * 1000;
    this.holdBack = holdBack * 1000;
    this.tolerance = tolerance; // ms: parts are whole RTMP milliseconds, their starts round
    this.ranges = []; // [[start, end]], sorted, merged
    this.playhead = null; // media time being shown, null before playback starts
    this.last = null; // wall clock of the last update
    this.startedAt = null; // wall clock when playback started
    this.stalled = false;
    this.stallStart = 0;
    this.stalls = 0;
    this.stallMs = 0;
    this.gapJumps = 0;
    this.liveJumps = 0;
  }

  get started() { return this.playhead !== null; }

  add(now, start, end) {
    this.advance(now);
    const r = this.ranges;
    let i = r.findIndex((x) => start <= x[1] + this.tolerance);
    if (i === -1) r.push([start, end]);
    else if (end < r[i][0] - this.tolerance) r.splice(i, 0, [start, end]);
    else {
      r[i][0] = Math.min(r[i][0], start);
      r[i][1] = Math.max(r[i][1], end);
      while (i + 1 < r.length && r[i + 1][0] <= r[i][1] + this.tolerance) {
        r[i][1] = Math.max(r[i][1], r[i + 1][1]);
        r.splice(i + 1, 1);
      }
    }
    if (!this.started) {
      const at = this._rangeAt(this.startAt);
      if (at !== null && r[at][1] > this.startAt) {
        this.playhead = this.startAt;
        this.startedAt = now;
        this.last = now;
      }
    } else if (this.stalled) {
      // data at the playhead, or past a hole after it (a restarted transcoder): play on
      const beyond = this._ahead() > 0 ? null : this.ranges.find((x) => x[0] > this.playhead);
      if (this._ahead() > 0 || beyond) {
        if (beyond) { this.playhead = beyond[0]; this.gapJumps += 1; }
        this.stalled = false;
        this.stallMs += now - this.stallStart;
        this.last = now;
      }
    }
  }

  // Move the playhead to `now`; a stall starts at the moment the buffer empties.
  advance(now) {
    if (!this.started || this.stalled) { if (this.started) this.last = now; return; }
    let dt = now - this.last;
    this.last = now;
    while (dt > 0) {
      const ahead = this._ahead();
      if (ahead >= dt) { this.playhead += dt; return; }
      this.playhead += ahead;
      dt -= ahead;
      const next = this.ranges.find((x) => x[0] > this.playhead + this.tolerance);
      if (next) { this.playhead = next[0]; this.gapJumps += 1; continue; }
      this.stalled = true;
      this.stalls += 1;
      this.stallStart = now - dt;
      return;
    }
  }

  // hls.js's jump back to live once too far behind the newest listed part; -> true if it jumped
  followLive(now, edge) {
    this.advance(now);
    if (!this.started || edge === null || edge - this.playhead <= this.maxLatency) return false;
    const target = edge - this.holdBack;
    if (this._rangeAt(target) === null) return false;
    if (this.stalled) { this.stalled = false; this.stallMs += now - this.stallStart; }
    this.playhead = target;
    this.liveJumps += 1;
    return true;
  }

  // ms of media buffered ahead of the playhead
  _ahead() {
    const at = this._rangeAt(this.playhead);
    return at === null ? 0 : Math.max(0, this.ranges[at][1] - this.playhead);
  }

  _rangeAt(t) {
    const i = this.ranges.findIndex((x) => x[0] - this.tolerance <= t && t < x[1]);
    return i === -1 ? null : i;
  }

  // time stalled so far, the current stall included
  stalledMs(now) { return this.stallMs + (this.stalled ? now - this.stallStart : 0); }

  // drop what was played long ago (a player keeps its back buffer short)
  trim(keepMs = 30000) {
    if (this.playhead === null) return;
    this.ranges = this.ranges.filter((x) => x[1] > this.playhead - keepMs);
  }
}
