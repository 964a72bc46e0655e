#!/usr/bin/env node
/**
 * The upstream clients side by side, measured in process (docs/benchmarks.md, "undici as the
 * upstream client"): for each client named, in turn and `--rounds` times over, a fresh process
 * runs Sluice (dist/, `startProxy`) with `SLUICE_UPSTREAM_CLIENT` set to it, and a child of it
 * the backend and the load: `--requests` keep-alive GETs of a 2 B body over 50 connections, then
 * `--handshakes` WebSocket handshakes from 50 openers (connect, handshake, close). Prints, per
 * client and phase, the proxy process's CPU time per request or handshake and the bytes V8
 * allocated and promoted per request or handshake (summed from --trace-gc-nvp: what the load on
 * a shared machine barely moves), and the ratios of the first client to the others.
 *
 *   node scripts/upstream-client-cpu.mjs [--clients lean,undici,node] [--rounds 3] [--requests 20000] [--handshakes 3000]
 */
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i < 0 ? dflt : args[i + 1]; };
const root = fileURLToPath(new URL('..', import.meta.url));
const self = fileURLToPath(import.meta.url);
const CONNS = 50;

if (args[0] === '--load') {
  // The backend and the load generator: a process of their own, so the proxy's CPU is its own.
  const { rawConnect, readUntil, wsHandshakeRequest } = await import(join(root, 'dist/test/helpers/raw-client.js'));
  const { acceptEchoUpgrade } = await import(join(root, 'dist/src/echo/echo-websocket.js'));
  const server = createServer((req, res) => {
    req.resume();
    res.end('ok');
  });
  server.on('upgrade', (req, socket, head) => acceptEchoUpgrade(req, socket, head, { id: 'b' }));
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  process.send({ backend: `127.0.0.1:${server.address().port}` });
  const [{ port, requests, handshakes }] = await once(process, 'message');
  const GET = Buffer.from('GET /x HTTP/1.1\r\nHost: b\r\n\r\n', 'latin1');
  const httpLoad = async (n) => {
    let left = n;
    await Promise.all(Array.from({ length: CONNS }, async () => {
      const s = await rawConnect(port, { timeoutMs: 60_000 });
      while (left-- > 0) {
        s.write(GET);
        await readUntil(s, (b) => b.length >= 2 && b.subarray(b.length - 2).toString() === 'ok', 60_000);
      }
      s.destroy();
    }));
  };
  const wsLoad = async (n) => {
    let left = n;
    await Promise.all(Array.from({ length: CONNS }, async () => {
      while (left-- > 0) {
        const s = await rawConnect(port, { timeoutMs: 60_000 });
        s.write(wsHandshakeRequest({ path: '/ws' }));
        await readUntil(s, '\r\n\r\n', 60_000);
        s.destroy();
      }
    }));
  };
  const phase = async (name, run, n) => {
    await run(Math.ceil(n / 5)); // warm-up
    process.send({ start: name });
    await once(process, 'message');
    await run(n);
    process.send({ end: name });
    await once(process, 'message');
  };
  await phase('http', httpLoad, requests);
  await phase('handshake', wsLoad, handshakes);
  process.send({ done: true });
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
} else if (args[0] === '--measure') {
  // The proxy: this process, its client chosen by SLUICE_UPSTREAM_CLIENT (set by the parent).
  const { startProxy } = await import(join(root, 'dist/src/index.js'));
  const load = fork(self, ['--load'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const [{ backend }] = await once(load, 'message');
  const proxy = await startProxy({ text: `events { worker_connections 20000; } http { access_log off;
    map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
    upstream app { server ${backend}; keepalive 64; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; } } }` });
  load.send({ port: proxy.listeners[0].port, requests: Number(opt('--requests', '20000')), handshakes: Number(opt('--handshakes', '3000')) });
  let cpu0 = null;
  for (;;) {
    const [m] = await once(load, 'message');
    if (m.done) break;
    if (m.start) {
      process.stdout.write(`PHASE start ${m.start}\n`);
      cpu0 = process.cpuUsage();
    } else {
      const c = process.cpuUsage(cpu0);
      process.stdout.write(`PHASE end ${m.end} ${c.user + c.system}\n`);
    }
    load.send({});
  }
  await proxy.destroy();
  process.exit(0);
} else {
  const clients = opt('--clients', 'lean,undici').split(',');
  const rounds = Number(opt('--rounds', '3'));
  const n = { http: Number(opt('--requests', '20000')), handshake: Number(opt('--handshakes', '3000')) };
  const results = {};
  for (let r = 0; r < rounds; r++) {
    for (const client of clients) {
      const child = spawn(process.execPath, ['--trace-gc-nvp', self, '--measure', ...args], {
        env: { ...process.env, SLUICE_UPSTREAM_CLIENT: client }, stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.setEncoding('latin1').on('data', (d) => (out += d));
      await once(child, 'close');
      let phase = null;
      const sums = {};
      for (const line of out.split('\n')) {
        const p = /^PHASE (start|end) (\w+)(?: (\d+))?/.exec(line);
        if (p) {
          if (p[1] === 'start') {
            phase = p[2];
            sums[phase] = { allocated: 0, promoted: 0, cpu: 0 };
          } else {
            sums[p[2]].cpu = Number(p[3]);
            phase = null;
          }
          continue;
        }
        if (phase === null) continue;
        const a = /allocated=(\d+)/.exec(line);
        const pr = /\bpromoted=(\d+)/.exec(line);
        if (a) sums[phase].allocated += Number(a[1]);
        if (pr) sums[phase].promoted += Number(pr[1]);
      }
      for (const [ph, s] of Object.entries(sums)) {
        const row = { cpuUs: s.cpu / n[ph], allocatedB: s.allocated / n[ph], promotedB: s.promoted / n[ph] };
        ((results[ph] ??= {})[client] ??= []).push(row);
        console.log(JSON.stringify({ round: r + 1, client, phase: ph, ...Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Math.round(v)])) }));
      }
    }
  }
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  for (const [ph, byClient] of Object.entries(results)) {
    const base = clients[0];
    for (const other of clients.slice(1)) {
      for (const k of ['cpuUs', 'allocatedB', 'promotedB']) {
        const ratios = byClient[other].map((x, i) => x[k] / byClient[base][i][k]);
        console.log(`${ph} ${k} ${other}/${base}: ${med(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}); ${base} ${med(byClient[base].map((x) => x[k])).toFixed(0)}, ${other} ${med(byClient[other].map((x) => x[k])).toFixed(0)}`);
      }
    }
  }
}
