// The LL-HLS load generator's HTTP client (bench/_hlsload.mjs): a minimal HTTP/1.1 keep-alive GET
// client on node:net, and the same request through node:http for comparison (`--client node`).
//
// Why not node:http: a generator process of 250 players makes ~1800 requests a second on a machine
// it shares with the platform it measures, and node:http's client machinery (http.Agent,
// ClientRequest, IncomingMessage streams, a timer per request) cost ~0.15 ms of CPU per request,
// most of the generator's CPU. Here a request is one prebuilt string written to a pooled socket,
// and a response is parsed from the socket's reads (one buffer shared by every socket, `onread`:
// no stream, no Buffer per read) for the few headers a player needs.
//
// A Pool is what a browser keeps per host: at most `maxSockets` connections to one host:port,
// an idle keep-alive connection reused (the most recently freed first, as http.Agent), requests
// beyond that queued first-in first-out; a connection the server closes (or answers with
// `Connection: close`) is dropped and the next request opens a new one. Only GET, only http:// on
// loopback, no pipelining.
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const MAX_HEAD = 64 * 1024;
const END_OF_HEAD = Buffer.from('\r\n\r\n');
// Every socket reads into this one buffer: `onread` hands each read over synchronously and the
// parser copies out what it keeps before returning, so the next read (of any socket) may reuse it.
const READ = Buffer.allocUnsafe(256 * 1024);

const HEAD = 0; // the status line and headers (also after a 1xx)
const LENGTH = 1; // a body of Content-Length bytes
const SIZE = 2; // a chunk's size line: hex digits
const EXT = 3; // the rest of a chunk's size line (extensions), up to its LF
const DATA = 4; // a chunk's data
const DATA_END = 5; // the CRLF after a chunk's data
const TRAILER = 6; // after the last chunk: trailer lines up to an empty one
const UNTIL_CLOSE = 7; // neither length nor chunked: the body ends when the connection does

// Connections with a request in flight, for the timeout sweep: one timer for all of them instead of
// one per request. A request times out after `timeoutMs` without a byte, as node:http's `timeout`
// (socket inactivity), give or take one sweep.
const inFlight = new Set();
const SWEEP_MS = 50;
let sweeper = null;
function sweep() {
  const now = performance.now();
  for (const c of inFlight) if (now - c.lastActive > c.req.timeoutMs) c.fail('timeout');
}

// for the tests: reads handed to the parser, connections opened
export const counters = { reads: 0, connections: 0 };

class Connection {
  constructor(host) {
    this.host = host;
    this.req = null;
    this.dead = false;
    this.served = 0; // responses read on this connection
    this.lastActive = 0;
    this.got = false; // a byte of the current response arrived
    this.reset();
    counters.connections += 1;
    this.socket = net.connect({
      host: host.hostname, port: host.port, noDelay: true,
      onread: { buffer: READ, callback: (n, buf) => { this.onRead(buf, n); } },
    });
    this.socket.setNoDelay(true);
    this.socket.on('error', () => {}); // 'close' follows and settles the request
    this.socket.on('close', () => this.closed());
  }

  reset() {
    this.state = HEAD;
    this.head = null; // header bytes of a head split over reads
    this.status = 0;
    this.cache = undefined;
    this.keepAlive = true;
    this.remaining = 0;
    this.size = 0; // body bytes
    this.body = null; // Buffer (Content-Length) or [Buffer] (chunked, until close), when kept
    this.filled = 0;
    this.digits = 0;
    this.lineLength = 0;
    this.interim = false;
  }

  send(req) {
    this.req = req;
    this.got = false;
    this.lastActive = performance.now();
    inFlight.add(this);
    if (sweeper === null) { sweeper = setInterval(sweep, SWEEP_MS); sweeper.unref(); }
    this.socket.write(`GET ${req.path} HTTP/1.1\r\nHost: ${this.host.authority}\r\n\r\n`, 'latin1');
  }

  onRead(buf, n) {
    if (this.req === null) { this.drop(); return; } // nothing asked: the connection is out of step
    this.got = true;
    counters.reads += 1;
    this.lastActive = performance.now();
    let data = buf;
    let off = 0;
    let end = n;
    while (off < end) {
      const state = this.state;
      if (state === HEAD) {
        if (this.head !== null) {
          data = Buffer.concat([this.head, data.subarray(off, end)]);
          off = 0;
          end = data.length;
          this.head = null;
        }
        const i = data.indexOf(END_OF_HEAD, off);
        // `data` may be the shared buffer: bytes past `end` are another read's
        if (i < 0 || i + 4 > end) {
          if (end - off > MAX_HEAD) { this.fail('error'); return; }
          this.head = Buffer.from(data.subarray(off, end)); // a copy: `data` may be reused
          return;
        }
        if (!this.headers(data.toString('latin1', off, i))) { this.fail('error'); return; }
        off = i + 4;
        if (this.interim) { this.reset(); continue; }
        if (this.state === HEAD) { this.complete(off < end); return; } // no body
      } else if (state === LENGTH || state === DATA || state === UNTIL_CLOSE) {
        const take = state === UNTIL_CLOSE ? end - off : Math.min(this.remaining, end - off);
        this.take(data, off, off + take);
        off += take;
        if (state === UNTIL_CLOSE) continue;
        this.remaining -= take;
        if (this.remaining === 0) {
          if (state === LENGTH) { this.complete(off < end); return; }
          this.state = DATA_END;
        }
      } else {
        // chunk framing, byte by byte: a few bytes per chunk, split anywhere
        const c = data[off++];
        if (state === SIZE) {
          const v = c >= 48 && c <= 57 ? c - 48 : (c | 0x20) >= 97 && (c | 0x20) <= 102 ? (c | 0x20) - 87 : -1;
          if (v >= 0) {
            this.remaining = this.remaining * 16 + v;
            if (++this.digits > 12) { this.fail('error'); return; }
          } else if (this.digits === 0) { this.fail('error'); return; }
          else if (c === 10) { if (!this.chunkSized()) return; }
          else this.state = EXT; // ';' extensions, whitespace, the CR
        } else if (state === EXT) {
          if (c === 10 && !this.chunkSized()) return;
        } else if (state === DATA_END) {
          if (c === 10) { this.state = SIZE; this.digits = 0; this.remaining = 0; }
          else if (c !== 13) { this.fail('error'); return; }
        } else if (c === 10) { // TRAILER
          if (this.lineLength === 0) { this.complete(off < end); return; }
          this.lineLength = 0;
        } else if (c !== 13) this.lineLength += 1;
      }
    }
  }

  chunkSized() {
    if (this.remaining === 0) { this.state = TRAILER; this.lineLength = 0; }
    else if (this.remaining > 2 ** 32) { this.fail('error'); return false; }
    else this.state = DATA;
    return true;
  }

  // The status line and the headers a player needs -> false if it is not HTTP/1.x
  headers(head) {
    if (!head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 32 || (head.length > 12 && head.charCodeAt(12) !== 32)) return false;
    let status = 0;
    for (let i = 9; i < 12; i++) {
      const d = head.charCodeAt(i) - 48;
      if (!(d >= 0 && d <= 9)) return false;
      status = status * 10 + d;
    }
    if (status < 100) return false;
    this.status = status;
    let keepAlive = head.charCodeAt(7) !== 48; // HTTP/1.0 closes unless it says keep-alive
    let length = -1;
    let chunked = false;
    let line = head.indexOf('\r\n');
    while (line !== -1) {
      const start = line + 2;
      line = head.indexOf('\r\n', start);
      const c = head.charCodeAt(start) | 0x20;
      if (c !== 99 && c !== 116 && c !== 120) continue; // c(ontent-length, onnection), t(ransfer-encoding), x(-cache)
      const stop = line === -1 ? head.length : line;
      const colon = head.indexOf(':', start);
      if (colon === -1 || colon > stop) continue;
      const name = head.slice(start, colon).toLowerCase();
      if (name === 'content-length') {
        const value = head.slice(colon + 1, stop).trim();
        length = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
      } else if (name === 'transfer-encoding') {
        chunked = head.slice(colon + 1, stop).trim().toLowerCase().endsWith('chunked');
      } else if (name === 'connection') {
        const value = head.slice(colon + 1, stop).toLowerCase();
        if (value.includes('close')) keepAlive = false;
        else if (value.includes('keep-alive')) keepAlive = true;
      } else if (name === 'x-cache') this.cache = head.slice(colon + 1, stop).trim();
    }
    this.keepAlive = keepAlive;
    if (status < 200) { this.interim = true; return true; } // 100 Continue and the like: the answer follows
    if (status === 204 || status === 304) { this.state = HEAD; return true; }
    if (chunked) {
      this.state = SIZE;
      this.digits = 0;
      this.remaining = 0;
      if (this.req.keep) this.body = [];
    } else if (length >= 0) {
      this.remaining = length;
      this.state = length === 0 ? HEAD : LENGTH;
      if (this.req.keep && length > 0) this.body = Buffer.allocUnsafe(length);
    } else if (Number.isNaN(length)) return false;
    else {
      this.state = UNTIL_CLOSE;
      this.keepAlive = false;
      if (this.req.keep) this.body = [];
    }
    return true;
  }

  take(data, from, to) {
    this.size += to - from;
    if (this.body === null) return;
    if (Array.isArray(this.body)) this.body.push(Buffer.from(data.subarray(from, to)));
    else { data.copy(this.body, this.filled, from, to); this.filled += to - from; }
  }

  complete(leftover) {
    const req = this.req;
    const { status, size, cache } = this;
    let body = '';
    if (this.body !== null) body = (Array.isArray(this.body) ? Buffer.concat(this.body) : this.body).toString();
    // bytes past the response were never asked for: the connection cannot be trusted again
    const reuse = this.keepAlive && !leftover;
    this.req = null;
    this.served += 1;
    inFlight.delete(this);
    this.reset();
    if (reuse) this.host.release(this);
    else this.drop();
    req.done(status, body, size, cache, null);
  }

  fail(why) {
    const req = this.req;
    this.req = null;
    this.drop();
    if (req !== null) req.done(0, '', 0, undefined, why);
  }

  closed() {
    if (this.dead) return;
    const req = this.req;
    if (req !== null && this.state === UNTIL_CLOSE) { this.complete(false); return; }
    if (req !== null && !this.got && this.served > 0 && !req.retried) {
      // the server closed an idle keep-alive connection as this request went out on it: a browser
      // sends it again on a new connection, once
      req.retried = true;
      this.req = null;
      this.drop();
      this.host.queue.unshift(req);
      this.host.dispatch();
      return;
    }
    this.fail('error');
  }

  drop() {
    if (this.dead) return;
    this.dead = true;
    inFlight.delete(this);
    this.host.forget(this);
    this.socket.destroy();
  }
}

class Host {
  constructor(authority, maxSockets) {
    const url = new URL(`http://${authority}`);
    if (!LOOPBACK.has(url.hostname)) throw new Error(`not loopback: ${authority}`);
    this.authority = authority;
    this.hostname = url.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(url.port || 80);
    this.maxSockets = maxSockets;
    this.open = 0;
    this.idle = [];
    this.queue = [];
  }

  request(req) {
    this.queue.push(req);
    this.dispatch();
  }

  dispatch() {
    while (this.queue.length) {
      const c = this.idle.pop();
      if (c !== undefined) { c.send(this.queue.shift()); continue; }
      if (this.open >= this.maxSockets) return;
      this.open += 1;
      new Connection(this).send(this.queue.shift());
    }
  }

  release(c) {
    if (this.queue.length) c.send(this.queue.shift());
    else this.idle.push(c);
  }

  forget(c) {
    this.open -= 1;
    const i = this.idle.indexOf(c);
    if (i !== -1) this.idle.splice(i, 1);
    this.dispatch();
  }
}

export class Pool {
  constructor({ maxSockets = 6 } = {}) {
    this.maxSockets = maxSockets;
    this.hosts = new Map(); // host:port -> Host
    this.destroyed = false;
  }

  // done(status, body, bodyBytes, xCache, error): error null, 'timeout' or 'error' (status 0)
  request(url, keep, timeoutMs, done) {
    if (!url.startsWith('http://')) throw new Error(`not http://: ${url}`);
    const slash = url.indexOf('/', 7);
    const authority = slash === -1 ? url.slice(7) : url.slice(7, slash);
    let path = slash === -1 ? '/' : url.slice(slash);
    const hash = path.indexOf('#');
    if (hash !== -1) path = path.slice(0, hash);
    let host = this.hosts.get(authority);
    if (host === undefined) { host = new Host(authority, this.maxSockets); this.hosts.set(authority, host); }
    if (this.destroyed) { done(0, '', 0, undefined, 'error'); return; }
    host.request({ path, keep, timeoutMs, done, retried: false });
  }

  // the counterpart of http.Agent#destroy: every connection closed, waiting requests failed
  destroy() {
    this.destroyed = true;
    for (const host of this.hosts.values()) {
      const waiting = host.queue.splice(0);
      host.maxSockets = 0;
      for (const c of [...host.idle]) c.drop();
      for (const c of [...inFlight]) if (c.host === host) c.fail('error');
      for (const r of waiting) r.done(0, '', 0, undefined, 'error');
    }
  }

  // how many connections are open and idle (tests)
  stats() {
    let open = 0;
    let idle = 0;
    let queued = 0;
    for (const h of this.hosts.values()) { open += h.open; idle += h.idle.length; queued += h.queue.length; }
    return { open, idle, queued };
  }
}

// The same request through node:http (an http.Agent({keepAlive: true, maxSockets}) as `agent`).
export function nodeRequest(agent, url, keep, timeoutMs, done) {
  let settled = false;
  const settle = (...args) => { if (!settled) { settled = true; done(...args); } };
  const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
    const chunks = [];
    let size = 0;
    res.on('data', (c) => { size += c.length; if (keep) chunks.push(c); });
    res.on('end', () => settle(res.statusCode, keep ? Buffer.concat(chunks).toString() : '', size, res.headers['x-cache'], null));
    res.on('error', () => settle(0, '', 0, undefined, 'error'));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => settle(0, '', 0, undefined, e.message === 'timeout' ? 'timeout' : 'error'));
}

// A pool for one client: 'lean' (Pool) or 'node' (http.Agent), and its request function.
export function client(kind) {
  if (kind === 'lean') {
    return { pool: (maxSockets) => new Pool({ maxSockets }), request: (p, url, keep, ms, done) => p.request(url, keep, ms, done) };
  }
  if (kind === 'node') {
    return { pool: (maxSockets) => new http.Agent({ keepAlive: true, maxSockets }), request: nodeRequest };
  }
  throw new Error(`unknown client ${kind} (lean or node)`);
}

// The generator's requests: get() as the players call it, with what the run reports of them
// (latency samples per kind from `measureFrom` on, errors by kind and status, body bytes).
export class Requests {
  constructor({ client: kind = 'lean', timeoutMs = 10000, clock = () => performance.timeOrigin + performance.now(), measureFrom = 0 } = {}) {
    const c = client(kind);
    this.newPool = c.pool;
    this.send = c.request;
    this.timeoutMs = timeoutMs;
    this.clock = clock;
    this.measureFrom = measureFrom;
    this.running = true; // errors after the run are its end, not the platform's
    this.samples = {}; // type -> [ms]
    this.errors = {}; // "type status" -> count
    this.bytes = 0;
  }

  // a player's connections to one host: a browser's per-host pool
  pool(maxSockets) { return this.newPool(maxSockets); }

  record(type, tReq, ms) {
    if (tReq >= this.measureFrom) (this.samples[type] ??= []).push(Math.round(ms * 10) / 10);
  }

  count(key) { if (this.running) this.errors[key] = (this.errors[key] ?? 0) + 1; }

  // -> {status, body, tReq, tResp, cache}; status 0 for a timeout or a failed connection
  get(pool, url, type, { keep = true } = {}) {
    return new Promise((resolve) => {
      const tReq = this.clock();
      this.send(pool, url, keep, this.timeoutMs, (status, body, size, cache, error) => {
        const tResp = this.clock();
        if (error !== null) { this.count(`${type} ${error}`); resolve({ status: 0, tReq, tResp }); return; }
        this.bytes += size;
        if (status === 200) this.record(type, tReq, tResp - tReq);
        else this.count(`${type} ${status}`);
        resolve({ status, body, tReq, tResp, cache });
      });
    });
  }
}
