// The load generator's HTTP client (bench/_httpget.mjs) against real servers: node:http, raw
// node:net servers that split their answers where a parser may trip, and the Debian nginx.
// Run by tests/bench/test_hls_player.py (`node --test`), or alone: node --test tests/bench/httpget.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import test from 'node:test';

import { Pool, Requests, counters } from '../../bench/_httpget.mjs';
import { NGINX, startNginx } from '../../bench/_scratch_nginx.mjs';

const T = { timeout: 20000 }; // a broken client fails its test rather than hang
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// waits for `cond` (a busy machine is slow, not wrong)
async function until(cond, what, ms = 5000) {
  for (const end = Date.now() + ms; !cond();) {
    if (Date.now() > end) throw new Error(`never: ${what}`);
    await sleep(5);
  }
}

// one request through a pool -> {status, body, size, cache, error}
function fetch(pool, url, { keep = true, timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    pool.request(url, keep, timeoutMs, (status, body, size, cache, error) => resolve({ status, body, size, cache, error }));
  });
}

// a node:http server that counts its connections -> {url, connections, close()}
async function httpServer(handler) {
  const server = http.createServer(handler);
  server.keepAliveTimeout = 30000;
  const seen = { connections: 0, open: 0, maxOpen: 0 };
  server.on('connection', (s) => {
    seen.connections += 1;
    seen.open += 1;
    seen.maxOpen = Math.max(seen.maxOpen, seen.open);
    s.on('close', () => { seen.open -= 1; });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  seen.url = `http://127.0.0.1:${server.address().port}`;
  seen.close = () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); };
  return seen;
}

// a raw server: for each request head it reads, answer(socket, path, n) writes the answer as it
// likes (n: the requests seen so far on any connection)
async function rawServer(answer) {
  const sockets = new Set();
  let n = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (d) => {
      pending += d.toString('latin1');
      let end;
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        answer(socket, head.split(' ')[1], ++n, head);
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => { for (const s of sockets) s.destroy(); return new Promise((r) => server.close(r)); },
  };
}

// writes `pieces` one by one with a pause between them, so that each arrives as a read of its own
async function dribble(socket, pieces, pauseMs = 5) {
  for (const p of pieces) {
    if (socket.destroyed) return;
    socket.write(p);
    await sleep(pauseMs);
  }
}

// `text` cut at these offsets
const cut = (text, offsets) => [0, ...offsets].map((o, i, all) => text.slice(o, all[i + 1]));

const CHUNKED = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nX-Cache: MISS\r\n\r\n'
  + '1a\r\nabcdefghijklmnopqrstuvwxyz\r\n'
  + '5;name=value\r\n01234\r\n'
  + 'A\r\nABCDEFGHIJ\r\n'
  + '0\r\nX-Trailer: yes\r\n\r\n';
const CHUNKED_BODY = 'abcdefghijklmnopqrstuvwxyz01234ABCDEFGHIJ';

test('a Content-Length body: kept for a playlist, only counted for a part', T, async () => {
  const body = 'x'.repeat(30000);
  const s = await httpServer((req, res) => { res.setHeader('X-Cache', 'HIT'); res.end(body); });
  const pool = new Pool({ maxSockets: 6 });
  try {
    const kept = await fetch(pool, `${s.url}/index.m3u8?_HLS_msn=3&_HLS_part=1`);
    assert.deepEqual(kept, { status: 200, body, size: 30000, cache: 'HIT', error: null });
    const counted = await fetch(pool, `${s.url}/part-1.0.m4s`, { keep: false });
    assert.deepEqual(counted, { status: 200, body: '', size: 30000, cache: 'HIT', error: null });
  } finally { pool.destroy(); await s.close(); }
});

test('a chunked body split where a parser trips: in the head, its end, chunk sizes, CR|LF, the last chunk', T, async () => {
  // every cut lands on a boundary: inside a header name, between CR and LF of the blank line,
  // inside a chunk size, between a chunk's data and its CRLF, inside an extension, in the trailer
  const offsets = [3, 40, 73, 86, 87, 89, 90, 91, 93, 100, 117, 118, 119, 122, 129, 133, 140, 149, 153, 160, 163];
  const pieces = cut(CHUNKED, offsets);
  assert.equal(pieces.join(''), CHUNKED);
  const s = await rawServer((socket) => dribble(socket, pieces));
  const pool = new Pool({ maxSockets: 1 });
  try {
    const reads = counters.reads;
    const r = await fetch(pool, `${s.url}/up/index.m3u8`);
    assert.deepEqual(r, { status: 200, body: CHUNKED_BODY, size: CHUNKED_BODY.length, cache: 'MISS', error: null });
    // the cuts really arrived apart (most of them: a busy machine may join a few)
    assert.ok(counters.reads - reads >= pieces.length / 3, `arrived in ${counters.reads - reads} reads`);
    // and the connection is still good for the next answer
    assert.equal((await fetch(pool, `${s.url}/up/index.m3u8`, { keep: false })).size, CHUNKED_BODY.length);
    assert.equal(pool.stats().open, 1);
  } finally { pool.destroy(); await s.close(); }
});

test('answers that arrive byte by byte: Content-Length and chunked', T, async () => {
  const length = 'HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: keep-alive\r\n\r\nnot found';
  const s = await rawServer((socket, path) => dribble(socket, [...(path === '/chunked' ? CHUNKED : length)], 1));
  const pool = new Pool({ maxSockets: 1 });
  try {
    const reads = counters.reads;
    assert.deepEqual(await fetch(pool, `${s.url}/length`), { status: 404, body: 'not found', size: 9, cache: undefined, error: null });
    assert.deepEqual(await fetch(pool, `${s.url}/chunked`),
      { status: 200, body: CHUNKED_BODY, size: CHUNKED_BODY.length, cache: 'MISS', error: null });
    assert.ok(counters.reads - reads > (length.length + CHUNKED.length) / 3, `arrived in ${counters.reads - reads} reads`);
  } finally { pool.destroy(); await s.close(); }
});

test('a 100 Continue and its answer in one read; 204 and 304 have no body', T, async () => {
  const s = await rawServer((socket, path) => {
    if (path === '/continue') socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    else if (path === '/204') socket.write('HTTP/1.1 204 No Content\r\nX-Cache: HIT\r\n\r\n');
    else socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 120\r\n\r\n'); // the length of what was not sent
  });
  const pool = new Pool({ maxSockets: 1 });
  try {
    assert.deepEqual(await fetch(pool, `${s.url}/continue`), { status: 200, body: 'ok', size: 2, cache: undefined, error: null });
    assert.deepEqual(await fetch(pool, `${s.url}/204`), { status: 204, body: '', size: 0, cache: 'HIT', error: null });
    assert.deepEqual(await fetch(pool, `${s.url}/304`), { status: 304, body: '', size: 0, cache: undefined, error: null });
    assert.deepEqual(await fetch(pool, `${s.url}/continue`), { status: 200, body: 'ok', size: 2, cache: undefined, error: null });
    assert.equal(pool.stats().open, 1);
  } finally { pool.destroy(); await s.close(); }
});

test('keep-alive: ten GETs one after another take one connection, each request as a browser writes it', T, async () => {
  const heads = [];
  const s = await rawServer((socket, path, n, head) => { heads.push(head); socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`); });
  const pool = new Pool({ maxSockets: 6 });
  try {
    for (let i = 0; i < 10; i++) {
      const r = await fetch(pool, `${s.url}/hls/a/index.m3u8?_HLS_msn=${i}&_HLS_part=0#ignored`);
      assert.equal(r.body, `/hls/a/index.m3u8?_HLS_msn=${i}&_HLS_part=0`);
    }
    const port = new URL(s.url).port;
    assert.equal(heads[3], `GET /hls/a/index.m3u8?_HLS_msn=3&_HLS_part=0 HTTP/1.1\r\nHost: 127.0.0.1:${port}`);
    assert.deepEqual(pool.stats(), { open: 1, idle: 1, queued: 0 });
  } finally { pool.destroy(); await s.close(); }
  const h = await httpServer((req, res) => res.end('ok'));
  const p2 = new Pool({ maxSockets: 6 });
  try {
    for (let i = 0; i < 10; i++) assert.equal((await fetch(p2, `${h.url}/x`)).status, 200);
    assert.equal(h.connections, 1);
  } finally { p2.destroy(); await h.close(); }
});

test('the pool limit: N connections at most, the rest queued first in first out', T, async () => {
  const order = [];
  const held = [];
  const s = await httpServer((req, res) => { order.push(req.url); held.push(res); });
  const pool = new Pool({ maxSockets: 3 });
  try {
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(fetch(pool, `${s.url}/${i}`));
    await until(() => held.length === 3, 'three requests at the server');
    await sleep(50);
    assert.deepEqual(order, ['/0', '/1', '/2']);
    assert.deepEqual(pool.stats(), { open: 3, idle: 0, queued: 5 });
    // one answer at a time: each frees a connection for the next in the queue
    for (let answered = 0; answered < 8; answered++) {
      await until(() => held.length > 0, `request ${answered} at the server`);
      held.shift().end('ok');
      await sleep(10);
    }
    const statuses = (await Promise.all(answers)).map((r) => r.status);
    assert.deepEqual(statuses, Array(8).fill(200));
    assert.deepEqual(order, ['/0', '/1', '/2', '/3', '/4', '/5', '/6', '/7']);
    assert.equal(s.connections, 3);
    assert.equal(s.maxOpen, 3);
    assert.deepEqual(pool.stats(), { open: 3, idle: 3, queued: 0 });
  } finally { pool.destroy(); await s.close(); }
});

test('a connection the server closes: after Connection: close, and an idle one closed without a word', T, async () => {
  const s = await rawServer((socket, path) => {
    if (path === '/last') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlast');
    else if (path === '/hangup') { socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhangup'); setTimeout(() => socket.destroy(), 20); }
    else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const pool = new Pool({ maxSockets: 1 });
  try {
    const opened = counters.connections;
    assert.equal((await fetch(pool, `${s.url}/last`)).body, 'last');
    assert.equal(pool.stats().open, 0); // dropped at once
    assert.equal((await fetch(pool, `${s.url}/a`)).body, 'ok');
    assert.equal((await fetch(pool, `${s.url}/hangup`)).body, 'hangup');
    await until(() => pool.stats().open === 0, 'the closed connection dropped'); // the server closed it meanwhile
    assert.deepEqual(await fetch(pool, `${s.url}/b`), { status: 200, body: 'ok', size: 2, cache: undefined, error: null });
    assert.equal(counters.connections - opened, 3);
  } finally { pool.destroy(); await s.close(); }
});

test('a request that went out on a kept-alive connection the server was closing is sent again on a new one, once', T, async () => {
  const perSocket = new WeakMap();
  let served = 0;
  const s = await rawServer((socket, path) => {
    const n = (perSocket.get(socket) ?? 0) + 1;
    perSocket.set(socket, n);
    // the second request on any connection meets a server that closes without answering (its
    // keep-alive timeout ran out as the request arrived)
    if (n === 2 || path === '/never') { socket.destroy(); return; }
    served += 1;
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const pool = new Pool({ maxSockets: 1 });
  try {
    const opened = counters.connections;
    assert.equal((await fetch(pool, `${s.url}/a`)).status, 200);
    assert.equal((await fetch(pool, `${s.url}/b`)).status, 200); // went out twice
    assert.equal(counters.connections - opened, 2);
    assert.equal(served, 2);
    // but not a request that fails on a fresh connection too: twice at most, then an error
    assert.equal((await fetch(pool, `${s.url}/never`)).error, 'error');
    assert.equal(counters.connections - opened, 3);
  } finally { pool.destroy(); await s.close(); }
});

test('an answer cut short by the server, a refused connection: status 0, an error', T, async () => {
  const s = await rawServer((socket) => { socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part'); setTimeout(() => socket.destroy(), 20); });
  const pool = new Pool({ maxSockets: 2 });
  try {
    assert.deepEqual(await fetch(pool, `${s.url}/x`), { status: 0, body: '', size: 0, cache: undefined, error: 'error' });
    await s.close();
    assert.deepEqual(await fetch(pool, `${s.url}/x`), { status: 0, body: '', size: 0, cache: undefined, error: 'error' });
    assert.equal(pool.stats().open, 0);
  } finally { pool.destroy(); }
});

test('a timeout: status 0, the connection closed, the pool usable again', T, async () => {
  let closed = 0;
  const s = await httpServer((req, res) => {
    req.socket.on('close', () => { closed += 1; });
    if (req.url !== '/never') res.end('ok');
  });
  const pool = new Pool({ maxSockets: 1 });
  try {
    const t0 = Date.now();
    const r = await fetch(pool, `${s.url}/never`, { timeoutMs: 400 });
    const took = Date.now() - t0;
    assert.deepEqual(r, { status: 0, body: '', size: 0, cache: undefined, error: 'timeout' });
    assert.ok(took >= 400 && took < 2000, `timed out after ${took} ms`);
    await until(() => closed === 1, 'the server saw the connection closed');
    assert.equal((await fetch(pool, `${s.url}/again`, { timeoutMs: 400 })).status, 200);
    // a slow answer that keeps arriving is not a timeout (inactivity, as node:http's)
  } finally { pool.destroy(); await s.close(); }
  const slow = await rawServer((socket) => dribble(socket, cut('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nslow!', [10, 20, 30, 40]), 100));
  const p2 = new Pool({ maxSockets: 1 });
  try {
    // 500 ms in all, 100 ms between bytes
    assert.equal((await fetch(p2, `${slow.url}/`, { timeoutMs: 400 })).body, 'slow!');
  } finally { p2.destroy(); await slow.close(); }
});

test('Requests.get: a 404 and a timeout counted by kind, 200s recorded, bytes summed; both clients alike', T, async () => {
  const s = await httpServer((req, res) => {
    if (req.url === '/missing') { res.statusCode = 404; res.end('no'); } else if (req.url !== '/never') { res.setHeader('X-Cache', 'HIT'); res.end('#EXTM3U\n'); }
  });
  try {
    for (const client of ['lean', 'node']) {
      const requests = new Requests({ client, timeoutMs: 1000 });
      const pool = requests.pool(6);
      const ok = await requests.get(pool, `${s.url}/index.m3u8`, 'playlist');
      assert.equal(ok.status, 200, client);
      assert.equal(ok.body, '#EXTM3U\n');
      assert.equal(ok.cache, 'HIT');
      assert.ok(ok.tResp >= ok.tReq);
      const missing = await requests.get(pool, `${s.url}/missing`, 'part', { keep: false });
      assert.equal(missing.status, 404);
      assert.equal(missing.body, '');
      const never = await requests.get(pool, `${s.url}/never`, 'blocking');
      assert.equal(never.status, 0);
      assert.deepEqual(requests.errors, { 'part 404': 1, 'blocking timeout': 1 }, client);
      assert.deepEqual(Object.keys(requests.samples), ['playlist'], client);
      assert.equal(requests.bytes, 8 + 2, client);
      pool.destroy();
    }
  } finally { await s.close(); }
});

test('through the Debian nginx: static files, a cache MISS re-chunked then HIT, keepalive_requests', { ...T, skip: !fs.existsSync(NGINX) && 'no nginx' }, async () => {
  const small = 'a'.repeat(1024);
  const large = Buffer.alloc(30 * 1024, 'b').toString();
  // an upstream answering without a length, in pieces: nginx passes it on chunked
  const up = await httpServer(async (req, res) => {
    res.setHeader('Content-Type', 'application/vnd.apple.mpegurl');
    for (let i = 0; i < 5; i++) { res.write(`#EXT-X-PART:${i}\n`.repeat(300)); await sleep(5); }
    res.end('#END\n');
  });
  const upBody = Array.from({ length: 5 }, (_, i) => `#EXT-X-PART:${i}\n`.repeat(300)).join('') + '#END\n';
  const nginx = await startNginx({ files: { 'small.bin': small, 'large.bin': large }, upstream: new URL(up.url).port, keepaliveRequests: 4 });
  const base = `http://127.0.0.1:${nginx.port}`;
  const pool = new Pool({ maxSockets: 2 });
  try {
    assert.deepEqual(await fetch(pool, `${base}/static/small.bin`), { status: 200, body: small, size: 1024, cache: undefined, error: null });
    assert.equal((await fetch(pool, `${base}/static/large.bin`)).body, large);
    // what nginx sends on a MISS of an upstream answer without a length (a key of its own)
    const raw = await new Promise((resolve) => {
      const c = net.connect(nginx.port, '127.0.0.1', () => c.write('GET /up/raw.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let text = '';
      c.on('data', (d) => { text += d; });
      c.on('close', () => resolve(text));
    });
    assert.match(raw, /\r\nTransfer-Encoding: chunked\r\n/);
    assert.match(raw, /\r\nX-Cache: MISS\r\n/);
    const miss = await fetch(pool, `${base}/up/index.m3u8`);
    assert.deepEqual(miss, { status: 200, body: upBody, size: upBody.length, cache: 'MISS', error: null });
    const hit = await fetch(pool, `${base}/up/index.m3u8`);
    assert.deepEqual(hit, { status: 200, body: upBody, size: upBody.length, cache: 'HIT', error: null });
    const notFound = await fetch(pool, `${base}/static/nothing`);
    assert.equal(notFound.status, 404);
    // nginx closes a connection after 4 requests (Connection: close): the pool opens another
    const opened = counters.connections;
    for (let i = 0; i < 12; i++) assert.equal((await fetch(pool, `${base}/cached/large.bin`, { keep: false })).size, large.length);
    assert.equal(counters.connections - opened, 3);
    // six at once over two connections
    assert.equal((await fetch(pool, `${base}/cached/small.bin`)).cache, 'MISS');
    const all = await Promise.all(Array.from({ length: 6 }, () => fetch(pool, `${base}/cached/small.bin`)));
    assert.deepEqual(all.map((r) => [r.status, r.body.length, r.cache]), Array(6).fill([200, 1024, 'HIT']));
    assert.ok(pool.stats().open <= 2);
  } finally { pool.destroy(); await nginx.stop(); await up.close(); }
});
