#!/usr/bin/env node
// CPU per request of the load generator's two HTTP clients (bench/_httpget.mjs: `lean` on
// node:net, `node` = node:http) against one throwaway nginx (one worker, bench/_scratch_nginx.mjs)
// serving cached files, as the gateway serves parts: `--pools` pools of `--sockets` keep-alive
// connections each (the generator's players), every connection busy with one GET after another
// through Requests.get (what the players call), until `--requests` have been answered. The small
// file's body is kept (a playlist), the large one's only counted (a part).
//
//   node bench/_httpget_bench.mjs [--requests 30000] [--pools 100] [--sockets 6] [--rounds 3]
//                                 [--small 1024] [--large 30720] [--clients node,lean]
//
// Per client and file: the generator process's CPU (process.cpuUsage, user + system) per request,
// nginx's worker's (/proc, clock ticks), requests per second; the median over the rounds, which
// alternate the clients' order. Prints a table and one line `RESULT {json}`.
import fs from 'node:fs';

import { Requests } from './_httpget.mjs';
import { startNginx } from './_scratch_nginx.mjs';

const DEFAULTS = { requests: 30000, pools: 100, sockets: 6, rounds: 3, small: 1024, large: 30720, clients: 'node,lean' };
const opts = { ...DEFAULTS };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in DEFAULTS)) throw new Error(`unknown option ${process.argv[i]}`);
  opts[key] = typeof DEFAULTS[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
const TICK = 100; // USER_HZ on Linux

function ticks(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}

async function round(base, client, file, keep) {
  const requests = new Requests({ client, timeoutMs: 10000 });
  const pools = Array.from({ length: opts.pools }, () => requests.pool(opts.sockets));
  const url = `${base}/cached/${file}`;
  // every connection open before the clock starts
  await Promise.all(pools.flatMap((p) => Array.from({ length: opts.sockets }, () => requests.get(p, url, 'warm', { keep }))));
  let left = opts.requests;
  let failed = 0;
  const worker = async (pool) => {
    while (left > 0) {
      left -= 1;
      const r = await requests.get(pool, url, 'part', { keep });
      if (r.status !== 200) failed += 1;
    }
  };
  const workers = nginx.workerPids();
  const nginx0 = workers.reduce((s, pid) => s + ticks(pid), 0);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(pools.flatMap((p) => Array.from({ length: opts.sockets }, () => worker(p))));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const nginxMs = ((workers.reduce((s, pid) => s + ticks(pid), 0) - nginx0) * 1000) / TICK;
  for (const p of pools) p.destroy();
  const n = opts.requests;
  return { client, file, keep, requests: n, failed, errors: requests.errors,
    generatorMsPerRequest: (cpu.user + cpu.system) / 1000 / n, userMs: cpu.user / 1000, systemMs: cpu.system / 1000,
    nginxMsPerRequest: nginxMs / n, requestsPerSecond: (n * 1000) / wall };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const nginx = await startNginx({ files: { 'small.bin': Buffer.alloc(opts.small, 'a'), 'large.bin': Buffer.alloc(opts.large, 'b') } });
const base = `http://127.0.0.1:${nginx.port}`;
const runs = [];
try {
  const clients = opts.clients.split(',');
  for (const [file, keep] of [['small.bin', true], ['large.bin', false]]) {
    const fill = new Requests();
    const pool = fill.pool(1);
    await fill.get(pool, `${base}/cached/${file}`, 'fill'); // into the cache
    pool.destroy();
    for (let r = 0; r < opts.rounds; r++) {
      for (const client of r % 2 ? [...clients].reverse() : clients) {
        const one = await round(base, client, file, keep);
        runs.push(one);
        process.stderr.write(`${file} ${client}: ${one.generatorMsPerRequest.toFixed(4)} ms CPU/request, nginx ${one.nginxMsPerRequest.toFixed(4)}, ${Math.round(one.requestsPerSecond)} req/s${one.failed ? `, ${one.failed} failed` : ''}\n`);
      }
    }
  }
} finally {
  await nginx.stop();
}
const summary = [];
for (const file of ['small.bin', 'large.bin']) {
  for (const client of opts.clients.split(',')) {
    const mine = runs.filter((x) => x.file === file && x.client === client);
    summary.push({ file, bytes: file === 'small.bin' ? opts.small : opts.large, client,
      generatorMsPerRequest: Number(median(mine.map((x) => x.generatorMsPerRequest)).toFixed(4)),
      nginxMsPerRequest: Number(median(mine.map((x) => x.nginxMsPerRequest)).toFixed(4)),
      requestsPerSecond: Math.round(median(mine.map((x) => x.requestsPerSecond))),
      failed: mine.reduce((s, x) => s + x.failed, 0) });
  }
}
console.log('file       bytes  client  generator ms CPU/request  nginx ms CPU/request  requests/s');
for (const s of summary) {
  console.log(`${s.file.padEnd(10)} ${String(s.bytes).padStart(5)}  ${s.client.padEnd(6)}  ${s.generatorMsPerRequest.toFixed(4).padStart(24)}  ${s.nginxMsPerRequest.toFixed(4).padStart(20)}  ${String(s.requestsPerSecond).padStart(10)}`);
}
console.log(`RESULT ${JSON.stringify({ options: opts, summary, runs })}`);
