#!/usr/bin/env node
/**
 * What one plain HTTP request (or one WebSocket handshake) costs the Sluice process, in figures
 * that do not depend on machine load: JavaScript heap bytes allocated per request, and (with
 * --strace) system calls per request. For comparing commits on a busy shared machine, where CPU
 * time is noise.
 *
 * Sluice runs as the bench runs it (`node dist/src/cli/main.js -c conf`, one process) with the
 * bench's plain sluice config (upstream keepalive 64, proxy_http_version 1.1, the Upgrade and
 * Connection headers from a map, access_log off). The backend (raw TCP, a fixed 2-byte
 * keep-alive response; 101 for a handshake) and the client (--connections keep-alive
 * connections, each sending its requests one after the other; for --ws, a new connection per
 * handshake) run in this process, outside the measured one.
 *
 * How bytes are counted: V8's young generation is made large (--min/max-semi-space-size) so that
 * no garbage collection runs inside a measured window; a preloaded module collects garbage at the
 * window's start and reads used_heap_size at both ends, over IPC. The difference is every byte
 * allocated in the window (young and old space). A window during which a GC ran is reported and
 * not used. Warm-up requests first, so that compilation (feedback vectors, code) is out of it.
 *
 * `--alloc-sites N` adds one more window under V8's sampling heap profiler (collected objects
 * included) and prints the N functions that allocated most, in bytes per request. `--cpu-prof
 * FILE` adds one more window under the CPU profiler (100 µs sampling) and writes its profile
 * (sum it with scripts/cpu-profile-summary.mjs --per N). Both run in the proxy process through
 * the inspector, after the measured windows, so the byte counts above stay unprofiled.
 *
 *   node scripts/request-cost.mjs [--root DIR] [--requests 4000] [--windows 3]
 *        [--connections 4] [--ws] [--strace] [--alloc-sites 25] [--cpu-prof FILE] [--json]
 *
 * --root: the checkout whose dist/ to run (default: this one), e.g. a worktree of an old commit.
 */
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocationSites } from './alloc-sites.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i < 0 ? dflt : args[i + 1]; };
const flag = (name) => args.includes(name);
const root = resolve(opt('--root', fileURLToPath(new URL('..', import.meta.url))));
const perWindow = Number(opt('--requests', '4000'));
const windows = Number(opt('--windows', '3'));
const connections = Number(opt('--connections', '4'));
const ws = flag('--ws');

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok');
const SWITCH = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');

/** Backend: answers every request head it sees; a handshake gets 101 and the connection stays a tunnel until closed. */
function startBackend() {
  const server = createServer((s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let i;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        s.write(/\r\nupgrade:/i.test(head) ? SWITCH : RESPONSE);
      }
    });
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => server);
}

const PRELOAD = `
const v8 = require('node:v8');
const { PerformanceObserver } = require('node:perf_hooks');
let gcs = 0;
new PerformanceObserver((l) => { gcs += l.getEntries().length; }).observe({ entryTypes: ['gc'] });
let inspector = null;
const post = (method, params) => new Promise((res, rej) => inspector.post(method, params, (e, r) => (e ? rej(e) : res(r))));
process.on('message', async (m) => {
  if (!m || m.costProbe === undefined) return;
  // Profiling windows: the inspector in this process; the profile goes to a file, not over IPC.
  if (m.costProbe === 'sites' || m.costProbe === 'cpu') {
    const { Session } = require('node:inspector');
    inspector = new Session();
    inspector.connect();
    if (m.costProbe === 'sites') await post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    else { await post('Profiler.enable'); await post('Profiler.setSamplingInterval', { interval: 100 }); await post('Profiler.start'); }
    process.send({ costProbe: m.costProbe });
    return;
  }
  if (m.costProbe === 'stop') {
    const sampled = m.file.endsWith('.heapprofile');
    const { profile } = await post(sampled ? 'HeapProfiler.stopSampling' : 'Profiler.stop');
    require('node:fs').writeFileSync(m.file, JSON.stringify(profile));
    inspector.disconnect();
    process.send({ costProbe: 'stop' });
    return;
  }
  if (m.costProbe === 'start') { global.gc(); global.gc(); }
  // the observer's entries arrive a turn later: report after it had the chance to count
  setTimeout(() => process.send({ costProbe: m.costProbe, used: v8.getHeapStatistics().used_heap_size, gcs }), 20);
});
process.channel && process.channel.unref();
`;

function config(backendPort) {
  return `# request-cost.mjs: the bench's plain sluice target
worker_processes 1;
events { worker_connections 20000; }
http {
  access_log off;
  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      '';
  }
  upstream echo {
    server 127.0.0.1:${backendPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:0;
    location / {
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
`;
}

/**
 * `n` GETs one after the other on keep-alive connections, each after the previous response; a
 * new connection when the proxy closes one (`Connection: close` at keepalive_requests, nginx's
 * 1000), as a client would.
 */
async function keepAliveClient(port, n) {
  let left = n;
  while (left > 0) left -= await keepAliveConnection(port, left);
}

/** Up to `n` GETs on one connection: how many were answered before it ended. */
async function keepAliveConnection(port, n) {
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  const req = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: request-cost\r\n\r\n`);
  let buf = '';
  let done = 0;
  await new Promise((res, rej) => {
    s.on('error', rej);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = buf.slice(0, i);
        const m = /content-length:\s*(\d+)/i.exec(head);
        const len = m ? Number(m[1]) : 0;
        if (buf.length < i + 4 + len) return;
        if (!buf.startsWith('HTTP/1.1 200')) return rej(new Error(`unexpected response: ${buf.slice(0, 80)}`));
        buf = buf.slice(i + 4 + len);
        done++;
        if (done === n || /^connection:\s*close/im.test(head)) {
          s.end();
          return res();
        }
        s.write(req);
      }
    });
    s.write(req);
  });
  return done;
}

/** `n` handshakes, each on a new connection: connect, handshake, read the 101, close. */
async function handshakeClient(port, n) {
  const req = Buffer.from(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  for (let k = 0; k < n; k++) {
    const s = connect(port, '127.0.0.1');
    await once(s, 'connect');
    s.write(req);
    let buf = '';
    await new Promise((res, rej) => {
      s.on('error', rej);
      s.on('data', (d) => { buf += d.toString('latin1'); if (buf.includes('\r\n\r\n')) res(); });
    });
    if (!buf.startsWith('HTTP/1.1 101')) throw new Error(`unexpected response: ${buf.slice(0, 80)}`);
    s.destroy();
  }
}

async function load(port, n) {
  const each = Math.floor(n / connections);
  const one = ws ? handshakeClient : keepAliveClient;
  await Promise.all(Array.from({ length: connections }, () => one(port, each)));
  return each * connections;
}

const dir = mkdtempSync(join(tmpdir(), 'request-cost-'));
const backend = await startBackend();
const conf = join(dir, 'sluice.conf');
writeFileSync(conf, config(backend.address().port));
writeFileSync(join(dir, 'preload.cjs'), PRELOAD);
const proxy = spawn(process.execPath, [
  '--expose-gc', '--min-semi-space-size=256', '--max-semi-space-size=256', '--require', join(dir, 'preload.cjs'),
  join(root, 'dist/src/cli/main.js'), '-c', conf,
], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, SLUICE_V8_MEMORY: 'default' } });
let out = '';
proxy.stdout.on('data', (d) => { out += d; });
proxy.stderr.on('data', (d) => { out += d; });
const port = await new Promise((res, rej) => {
  const t = setInterval(() => { const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out); if (m) { clearInterval(t); res(Number(m[1])); } }, 20);
  proxy.once('exit', (c) => { clearInterval(t); rej(new Error(`sluice exited (${c}): ${out}`)); });
});
const probe = async (what) => {
  proxy.send({ costProbe: what });
  for (;;) { const [m] = await once(proxy, 'message'); if (m?.costProbe === what) return m; }
};

try {
  await load(port, perWindow); // warm-up: compile the request path
  await load(port, perWindow);
  const results = [];
  for (let w = 0; w < windows; w++) {
    const a = await probe('start');
    const n = await load(port, perWindow);
    const b = await probe('end');
    const clean = b.gcs === a.gcs;
    results.push({ requests: n, bytesPerRequest: clean ? Math.round((b.used - a.used) / n) : null, gcsInWindow: b.gcs - a.gcs });
  }
  let syscalls = null;
  if (flag('--strace')) {
    // strace -c attached for one window: counts are per syscall kind, summed over the window.
    const st = spawn('strace', ['-f', '-c', '-o', join(dir, 'strace.txt'), '-p', String(proxy.pid)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1000));
    const n = await load(port, perWindow);
    st.kill('SIGINT');
    await once(st, 'exit');
    // strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall; the total row is left out.
    const rows = readFileSync(join(dir, 'strace.txt'), 'utf8').split('\n').filter((l) => /^\s*\d/.test(l))
      .map((l) => l.trim().split(/\s+/)).filter((f) => f[f.length - 1] !== 'total');
    const calls = rows.reduce((sum, f) => sum + Number(f[3]), 0);
    syscalls = { perRequest: +(calls / n).toFixed(2), table: rows.map((f) => `${f[f.length - 1]} ${(Number(f[3]) / n).toFixed(2)}`) };
  }
  let allocSites = null;
  const sites = Number(opt('--alloc-sites', '0'));
  if (sites > 0) {
    const file = join(dir, 'sites.heapprofile');
    await probe('sites');
    const n = await load(port, perWindow);
    proxy.send({ costProbe: 'stop', file });
    for (;;) { const [m] = await once(proxy, 'message'); if (m?.costProbe === 'stop') break; }
    allocSites = allocationSites(JSON.parse(readFileSync(file, 'utf8')), n, sites);
  }
  const cpuProf = opt('--cpu-prof', null);
  if (cpuProf !== null) {
    await probe('cpu');
    await load(port, perWindow);
    proxy.send({ costProbe: 'stop', file: resolve(cpuProf) });
    for (;;) { const [m] = await once(proxy, 'message'); if (m?.costProbe === 'stop') break; }
  }
  const commit = (() => { try { return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { return '?'; } })();
  const report = { commit, root, mode: ws ? 'handshake' : 'http', connections, windows: results, syscalls, ...(allocSites === null ? {} : { allocationSitesBytesPerRequest: allocSites }) };
  if (flag('--json')) console.log(JSON.stringify(report));
  else {
    console.log(`${commit} ${report.mode}: bytes allocated per request, by window: ${results.map((r) => r.bytesPerRequest ?? `(gc x${r.gcsInWindow})`).join(' ')}`);
    if (syscalls) console.log(`syscalls per request: ${syscalls.perRequest} (${syscalls.table.join(', ')})`);
    if (allocSites) for (const [site, bytes] of Object.entries(allocSites)) console.log(`${String(bytes).padStart(7)}  ${site}`);
  }
} finally {
  proxy.kill('SIGTERM');
  await once(proxy, 'exit');
  backend.close();
  rmSync(dir, { recursive: true, force: true });
}
