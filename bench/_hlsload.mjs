#!/usr/bin/env node
// LL-HLS load generator: N players of one live stream in one Node.js process, each behaving like
// hls.js 1.7 in low-latency mode (the stream page's player; bench/_hlsplayer.mjs holds its
// decisions): the master playlist, one rendition, then blocking playlist reloads for the next part
// (`_HLS_msn`/`_HLS_part` as hls.js computes them) and, one after another, the parts each answer
// announces, into a buffer that plays in real time from PART-HOLD-BACK behind live. A share of the
// players (--legacy-share) play as hls.js without low-latency mode: whole segments, three target
// durations behind. Run by bench/hls_load.py, several of these processes at once.
//
//   node bench/_hlsload.mjs --master http://127.0.0.1:PORT/hls/<session>/index.m3u8 --players 250
//        [--seconds 30] [--measure-from 8] [--ramp 3] [--origin http://127.0.0.1:PORT]
//        [--legacy-share 0.1] [--rendition spread] [--preload-hint] [--first-player 0] [--client lean]
//
// --origin: the LL-HLS origin itself, followed by one probe per rendition (blocking reloads, not
// through the cache) to know when each part came to exist, so that a player's blocking reload is
// also timed from that moment. Requests before --measure-from seconds (the start-up) are not
// counted in the latencies; stalls are counted both over the whole run and from then on.
// --client: the HTTP client, `lean` (bench/_httpget.mjs: keep-alive GETs on node:net, a fraction
// of the CPU) or `node` (node:http, what the generator used before; to compare). Both keep a
// browser's per-host pool: 6 connections per player, requests beyond them queued.
// Only loopback URLs are accepted. Output: one line `RESULT {json}` on stdout.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Requests } from './_httpget.mjs';
import {
  PlaybackBuffer, advanced, edges, liveEdge, nextDirectives, parseMediaPlaylist, partsAfter, startPoint, startPointSegments,
} from './_hlsplayer.mjs';

const DEFAULTS = {
  master: '', players: 10, seconds: 30, 'measure-from': 8, ramp: 3, origin: '', 'legacy-share': 0,
  rendition: 'spread', 'preload-hint': false, 'first-player': 0, 'max-latency': 3, 'hold-back': 0,
  timeout: 10, client: 'lean',
};

function parseArgs(argv) {
  const o = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in DEFAULTS)) throw new Error(`unknown option ${argv[i]}`);
    if (typeof DEFAULTS[key] === 'boolean') { o[key] = true; continue; }
    const value = argv[++i];
    o[key] = typeof DEFAULTS[key] === 'number' ? Number(value) : value;
    if (typeof DEFAULTS[key] === 'number' && !Number.isFinite(o[key])) throw new Error(`${argv[i - 1]}: not a number`);
  }
  for (const url of [o.master, o.origin].filter(Boolean)) {
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname)) throw new Error(`not loopback: ${url}`);
  }
  if (!o.master) throw new Error('--master is required');
  if (!['lean', 'node'].includes(o.client)) throw new Error(`--client: lean or node, not ${o.client}`);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const clock = () => performance.timeOrigin + performance.now(); // ms, the same across processes
const t0 = clock();
const measureFrom = t0 + opts['measure-from'] * 1000;
const stopAt = t0 + opts.seconds * 1000;
let running = true;

// ---- requests ------------------------------------------------------------------------------
// samples: type -> [ms]; errors: "type status" -> count; bytes: body bytes (requests.bytes)
const requests = new Requests({ client: opts.client, timeoutMs: opts.timeout * 1000, clock, measureFrom });
const { samples, errors } = requests;
const record = (type, tReq, ms) => requests.record(type, tReq, ms);
// -> {status, body, tReq, tResp, cache}
const get = (agent, url, type, options) => requests.get(agent, url, type, options);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const resolveUrl = (base, uri) => new URL(uri, base).toString();

// ---- when each part came to exist (straight at the origin) ------------------------------------
const exists = new Map(); // `${rendition path}|${msn}.${part}` -> ms

// The probe is also a reference player at the origin, past the cache and with no download time:
// it plays each part from the moment the origin lists it. When it stalls the origin itself was late
// (the transcoder starved), not the delivery.
const reference = {}; // rendition path -> PlaybackBuffer

async function probe(mediaUrl) {
  const path = new URL(mediaUrl).pathname;
  const url = new URL(path, opts.origin).toString();
  const agent = requests.pool(1);
  let query = '';
  let taken = null;
  while (running) {
    const r = await get(agent, url + query, 'probe');
    if (r.status !== 200) { query = ''; await sleep(100); continue; }
    const details = parseMediaPlaylist(r.body);
    for (const s of details.segments) {
      for (const p of s.parts) if (!exists.has(`${path}|${s.msn}.${p.index}`)) exists.set(`${path}|${s.msn}.${p.index}`, r.tResp);
    }
    if (!reference[path]) {
      const sp = startPoint(details, details.partHoldBack || 3 * details.partTarget);
      if (sp) {
        reference[path] = new PlaybackBuffer({ startAt: sp.startAt, maxLatency: opts['max-latency'], holdBack: details.partHoldBack });
        for (const p of sp.parts) reference[path].add(r.tResp, p.start, p.start + p.duration * 1000);
        taken = sp.parts[sp.parts.length - 1];
      }
    } else {
      for (const p of partsAfter(details, taken)) { reference[path].add(r.tResp, p.start, p.start + p.duration * 1000); taken = p; }
      reference[path].followLive(r.tResp, liveEdge(details));
    }
    if (details.ended) return;
    const d = nextDirectives(details);
    query = `?_HLS_msn=${d.msn}${d.part === undefined ? '' : `&_HLS_part=${d.part}`}`;
  }
}

function existedAt(path, msn, part) {
  // a part past the end of a whole segment is the next segment's first (RFC 8216bis 6.2.5.2)
  return exists.get(`${path}|${msn}.${part}`) ?? exists.get(`${path}|${msn + 1}.0`);
}

// Players of one rendition are answered the same bytes: each distinct playlist is parsed once per
// process (a browser parses its own, but that is the viewer's CPU, not the platform's; here it would
// be the generator's, which shares the machine with the platform). Nothing downstream mutates it.
const parsedPlaylists = new Map();
function parsed(body) {
  let d = parsedPlaylists.get(body);
  if (d === undefined) {
    d = parseMediaPlaylist(body);
    if (parsedPlaylists.size >= 64) parsedPlaylists.delete(parsedPlaylists.keys().next().value);
    parsedPlaylists.set(body, d);
  }
  return d;
}

// ---- players --------------------------------------------------------------------------------
const players = [];

class Player {
  constructor(id, legacy) {
    this.id = id;
    this.legacy = legacy;
    this.agent = requests.pool(6); // a browser's per-host pool
    this.buffer = null;
    this.queue = [];
    this.taken = null; // the last part (or segment) queued
    this.hints = new Map(); // URI -> the request for a hinted part made before its turn
    this.init = null;
    this.edge = null;
    this.wake = null;
    this.windowStart = null; // {stalls, stallMs} when the measured window began
    this.unadvanced = 0; // blocking reloads answered with nothing new (then it waits, as hls.js does)
  }

  async run(renditions) {
    this.started = clock();
    const master = await get(this.agent, opts.master, 'master');
    if (master.status !== 200) return this.fail('master');
    const variants = master.body.split('\n').filter((l) => l && !l.startsWith('#'));
    if (!variants.length) return this.fail('master without variants');
    renditions.push(...variants.filter((v) => !renditions.includes(v)));
    startProbes();
    // spread: players round-robin over the renditions; first: the first listed (the source)
    const pick = opts.rendition === 'first' ? 0 : this.id % variants.length;
    this.url = resolveUrl(opts.master, variants[pick]);
    this.path = new URL(this.url).pathname;
    const first = await get(this.agent, this.url, 'playlist');
    if (first.status !== 200) return this.fail('playlist');
    let details = parsed(first.body);
    if (this.legacy) {
      const sp = startPointSegments(details, details.holdBack || 3 * details.targetDuration);
      if (!sp) return this.fail('no segment');
      this.buffer = new PlaybackBuffer({ startAt: sp.startAt, maxLatency: Infinity });
      this.enqueue(sp.segments);
    } else {
      const holdBack = opts['hold-back'] || details.partHoldBack || 3 * details.partTarget;
      const sp = startPoint(details, holdBack);
      if (!sp) return this.fail('no independent part');
      this.buffer = new PlaybackBuffer({ startAt: sp.startAt, maxLatency: opts['max-latency'], holdBack });
      this.enqueue(sp.parts);
    }
    this.edge = liveEdge(details);
    this.fetchLoop();
    let plain = false; // the last reload brought nothing new: hls.js then reloads without directives
    while (running && !details.ended) {
      const d = nextDirectives(details, !this.legacy);
      const { endSN, lastPartSn } = edges(details);
      if (this.legacy && lastPartSn === endSN) await sleep(details.targetDuration * 500); // hls.js's timer
      if (!running) break;
      const query = plain ? '' : `?_HLS_msn=${d.msn}${d.part === undefined ? '' : `&_HLS_part=${d.part}`}`;
      const r = await get(this.agent, `${this.url}${query}`, plain ? 'playlist' : 'blocking');
      if (r.status !== 200) { await sleep(r.status === 503 ? 0 : 500); continue; }
      const at = plain || d.part === undefined ? undefined : existedAt(this.path, d.msn, d.part);
      if (at !== undefined) record('blockingFromPart', r.tReq, r.tResp - Math.max(r.tReq, at));
      const previous = details;
      details = parsed(r.body);
      this.edge = liveEdge(details);
      // hls.js (playlistLoaded): directives only after a reload that advanced; otherwise the next
      // load, half a target duration later, carries none (getDeliveryDirectives without msn)
      plain = !advanced(previous, details);
      if (plain) { this.unadvanced += 1; await sleep(details.targetDuration * 500); }
      if (this.legacy) this.enqueue(details.segments.filter((s) => s.uri !== null && (this.taken === null || s.msn > this.taken.msn)));
      else {
        this.enqueue(partsAfter(details, this.taken));
        if (opts['preload-hint'] && details.preloadHint) this.fetchHint(resolveUrl(this.url, details.preloadHint));
      }
    }
  }

  fail(why) { this.failed = why; }

  enqueue(items) {
    if (!items.length) return;
    this.queue.push(...items);
    const last = items[items.length - 1];
    this.taken = { msn: last.msn, index: last.index ?? Infinity };
    if (this.wake) { this.wake(); this.wake = null; }
  }

  async fetchLoop() {
    while (running) {
      if (!this.queue.length) { await new Promise((r) => { this.wake = r; }); continue; }
      const item = this.queue.shift();
      if (item.map && item.map !== this.init) {
        const r = await get(this.agent, resolveUrl(this.url, item.map), 'init', { keep: false });
        if (r.status === 200) this.init = item.map;
      }
      const url = resolveUrl(this.url, item.uri);
      const hinted = this.hints.get(url);
      this.hints.delete(url);
      let r = hinted ? await hinted : null;
      if (r?.status !== 200) r = await get(this.agent, url, this.legacy ? 'segment' : 'part', { keep: false });
      if (r.status !== 200) continue; // gone from the window (the player fell too far behind)
      this.buffer.add(clock(), item.start, item.start + item.duration * 1000);
    }
  }

  // A player that requests the hinted part at once (as AVPlayer does; hls.js does not): the
  // origin holds it until it exists.
  fetchHint(url) {
    if (this.hints.has(url)) return;
    if (this.hints.size > 8) this.hints.delete(this.hints.keys().next().value); // never taken: fell behind
    this.hints.set(url, get(this.agent, url, 'hintedPart', { keep: false }));
  }
}

// ---- the run ----------------------------------------------------------------------------------
const renditions = [];
const behindEdge = []; // ms: newest listed part -> playhead (hls.js's `latency`)
const behindClock = []; // ms: wall clock -> playhead's frame time (PROGRAM-DATE-TIME)
let cpuAtWindow = null;
// how late this process's own event loop ran (its latencies include that: a starved generator
// measures its own queueing too)
const loopDelay = monitorEventLoopDelay({ resolution: 10 });

const probesStarted = new Set();
function startProbes() {
  if (!opts.origin) return;
  for (const v of renditions) {
    const url = resolveUrl(opts.master, v);
    if (!probesStarted.has(url)) { probesStarted.add(url); probe(url); }
  }
}

async function main() {
  const n = opts.players;
  const legacyEvery = opts['legacy-share'] > 0 ? Math.round(1 / opts['legacy-share']) : 0;
  for (let i = 0; i < n; i++) {
    const id = opts['first-player'] + i;
    const p = new Player(id, legacyEvery > 0 && id % legacyEvery === legacyEvery - 1);
    players.push(p);
    setTimeout(() => { if (running) p.run(renditions).catch((e) => p.fail(String(e))); },
      (opts.ramp * 1000 * i) / Math.max(1, n));
  }
  const tick = setInterval(() => {
    const now = clock();
    if (now >= measureFrom && cpuAtWindow === null) {
      cpuAtWindow = { cpu: process.cpuUsage(), at: now };
      loopDelay.enable();
      for (const b of Object.values(reference)) b.windowStart = { stalls: b.stalls, stallMs: b.stalledMs(now) };
      for (const p of players) if (p.buffer) p.windowStart = { stalls: p.buffer.stalls, stallMs: p.buffer.stalledMs(now) };
    }
    for (const p of players) {
      const b = p.buffer;
      if (!b) continue;
      if (!p.legacy) b.followLive(now, p.edge); else b.advance(now);
      b.trim();
      if (now >= measureFrom && b.started) {
        if (p.edge !== null) behindEdge.push(Math.round(p.edge - b.playhead));
        behindClock.push(Math.round(now - b.playhead));
      }
    }
  }, 1000);
  await sleep(stopAt - clock());
  running = false;
  requests.running = false;
  clearInterval(tick);
  const now = clock();
  const cpu = process.cpuUsage(cpuAtWindow?.cpu);
  const windowMs = cpuAtWindow ? now - cpuAtWindow.at : now - t0;
  const out = {
    players: players.map((p) => {
      const b = p.buffer;
      if (b) b.advance(now);
      const w = p.windowStart ?? { stalls: 0, stallMs: 0 };
      return {
        id: p.id, legacy: p.legacy, rendition: p.path ?? null, failed: p.failed ?? null,
        startupMs: b?.startedAt ? Math.round(b.startedAt - p.started) : null,
        stalls: b ? b.stalls : null, stallMs: b ? Math.round(b.stalledMs(now)) : null,
        windowStalls: b ? b.stalls - w.stalls : null, windowStallMs: b ? Math.round(b.stalledMs(now) - w.stallMs) : null,
        gapJumps: b?.gapJumps ?? 0, liveJumps: b?.liveJumps ?? 0, unadvancedReloads: p.unadvanced,
      };
    }),
    client: opts.client, samples, errors, bytes: requests.bytes, behindEdge, behindClock,
    cpu: { userS: cpu.user / 1e6, systemS: cpu.system / 1e6, windowS: windowMs / 1000 },
    partsSeenByProbe: exists.size,
    eventLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    reference: Object.fromEntries(Object.entries(reference).map(([path, b]) => {
      b.advance(now);
      const w = b.windowStart ?? { stalls: 0, stallMs: 0 };
      return [path, { stalls: b.stalls, stallMs: Math.round(b.stalledMs(now)), windowStalls: b.stalls - w.stalls,
        windowStallMs: Math.round(b.stalledMs(now) - w.stallMs), gapJumps: b.gapJumps, liveJumps: b.liveJumps }];
    })),
  };
  for (const p of players) p.agent.destroy();
  // a pipe is written asynchronously: exit only once all of it is out (a result is megabytes)
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`, () => process.exit(0));
}

main().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exit(2); });
