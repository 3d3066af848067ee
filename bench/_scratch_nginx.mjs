// A throwaway nginx (the Debian binary) on free loopback ports, for the HTTP client's tests and its
// micro-benchmark (tests/bench/httpget.test.mjs, bench/_httpget_bench.mjs):
//   /static/<file>  the files, straight from disk (Content-Length)
//   /cached/<file>  the same through proxy_cache from a second server block, as the gateway's /hls/
//                   (X-Cache: MISS, then HIT)
//   /up/<path>      proxied to `upstream` (a port) through proxy_cache: an upstream answer without a
//                   length is re-chunked on a MISS, as the gateway does with the origin's
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const NGINX = '/usr/sbin/nginx';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function accepting(port, deadline) {
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('connect', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx never listened on ${port}`);
}

// -> {port, pid (the master), workerPids(), stop()}
export async function startNginx({ files = {}, upstream = null, keepaliveRequests = 1000 } = {}) {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'scratch-nginx-'));
  fs.chmodSync(prefix, 0o755); // the workers run as nobody when the master is root
  const www = path.join(prefix, 'www');
  fs.mkdirSync(www, { mode: 0o755 });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(www, name), content, { mode: 0o644 });
  for (const sub of ['tmp', 'cache']) { fs.mkdirSync(path.join(prefix, sub)); fs.chmodSync(path.join(prefix, sub), 0o777); }
  const [port, origin] = [await freePort(), await freePort()];
  const cached = 'proxy_cache c; proxy_cache_valid 200 10m; proxy_cache_lock on; proxy_http_version 1.1; '
    + 'proxy_set_header Connection ""; add_header X-Cache $upstream_cache_status always;';
  const conf = `
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=c:1m max_size=64m inactive=10m;
  keepalive_requests ${keepaliveRequests};
  server { listen 127.0.0.1:${origin}; root ${www}; }
  server {
    listen 127.0.0.1:${port};
    location /static/ { alias ${www}/; }
    location /cached/ { proxy_pass http://127.0.0.1:${origin}/; ${cached} }
    ${upstream ? `location /up/ { proxy_pass http://127.0.0.1:${upstream}/; ${cached} }` : ''}
  }
}
`;
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const proc = spawn(NGINX, ['-p', prefix, '-c', path.join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  try {
    await Promise.race([accepting(port, Date.now() + 10000),
      exited.then((code) => { throw new Error(`nginx exited (${code}): ${stderr}`); })]);
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return {
    port,
    pid: proc.pid,
    prefix,
    workerPids() {
      return fs.readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
    },
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}
