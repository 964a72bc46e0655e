#!/usr/bin/env node
/**
 * What an idle tunnel holds, measured in process: Sluice (dist/, `startProxy`) runs here with
 * `--expose-gc`; the WebSocket backend and the clients run in a child process. 200 tunnels are
 * opened and closed first (warm-up), then N are opened and held; each reading follows four forced
 * collections. Prints RSS and JS heap per tunnel over the warmed-up baseline, and with
 * `--snapshot DIR` writes heap snapshots at the baseline and with N tunnels open (to diff in
 * Chrome DevTools' Comparison view).
 *
 * `--give-back` then calls the sluice_memory addon's reduceMemory() with the tunnels held (what
 * src/cli/memory-settings.ts does once the process is idle), waits up to 5 s for the new space to
 * shrink, and prints the collections' pauses meanwhile (perf_hooks) and RSS after it.
 *
 *   node --expose-gc scripts/idle-memory.mjs [--tunnels 3000] [--access-log] [--snapshot /tmp/snap] [--v8 '--flag=value'] [--no-gc] [--wait-after MS] [--cli-memory] [--give-back]
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { writeHeapSnapshot } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i < 0 ? dflt : args[i + 1]; };
const N = Number(opt('--tunnels', '3000'));
const snapDir = opt('--snapshot', null);
const accessLog = args.includes('--access-log');
const root = fileURLToPath(new URL('..', import.meta.url));

if (process.argv[2] === '--child') {
  // The child: a WebSocket echo backend and the clients, so their memory is not Sluice's.
  const { startHttpBackend } = await import(join(root, 'dist/test/helpers/backends.js'));
  const { rawConnect, readUntil, wsHandshakeRequest } = await import(join(root, 'dist/test/helpers/raw-client.js'));
  const backend = await startHttpBackend();
  process.send({ backend: backend.addr });
  const held = [];
  const open = async (port, n) => {
    const batch = [];
    for (let i = 0; i < n; i++) {
      batch.push((async () => {
        const s = await rawConnect(port, { timeoutMs: 30_000 });
        s.write(wsHandshakeRequest({ path: '/ws' }));
        await readUntil(s, '\r\n\r\n', 30_000);
        return s;
      })());
      if (batch.length === 100) held.push(...await Promise.all(batch.splice(0)));
    }
    held.push(...await Promise.all(batch));
  };
  process.on('message', async (m) => {
    if (m.open) { await open(m.port, m.open); process.send({ opened: held.length }); }
    if (m.closeAll) { for (const s of held.splice(0)) s.destroy(); process.send({ closed: true }); }
    if (m.exit) { await backend.close(); process.exit(0); }
  });
} else {
  if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
  // --cli-memory: the sluice command's memory settings (cli/memory-settings.ts) in this process.
  if (args.includes('--cli-memory')) await import(join(root, 'dist/src/cli/memory-settings.js'));
  const v8flags = opt('--v8', null);
  if (v8flags) (await import('node:v8')).setFlagsFromString(v8flags);
  const { startProxy } = await import(join(root, 'dist/src/index.js'));
  const child = fork(fileURLToPath(import.meta.url), ['--child'], { stdio: 'inherit' });
  const next = async () => (await once(child, 'message'))[0];
  const { backend } = await next();
  const logDir = mkdtempSync(join(tmpdir(), 'idle-mem-'));
  const proxy = await startProxy({ text: `events { worker_connections 20000; } http {
    ${accessLog ? `access_log ${logDir}/access.log;` : 'access_log off;'}
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream app { server ${backend}; keepalive 64; }
    server { listen 127.0.0.1:0; location / {
      proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s; proxy_send_timeout 3600s;
    } } }` });
  const port = proxy.listeners[0].port;
  const settle = async () => { for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); } };
  const { getHeapSpaceStatistics } = await import('node:v8');
  const reading = () => {
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.physical_space_size]));
    return { rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, ext: m.external + m.arrayBuffers, spaces };
  };
  child.send({ port, open: 200 }); await next();
  child.send({ closeAll: true }); await next();
  for (let i = 0; i < 200 && proxy.stats.snapshot().tunnels.open > 0; i++) await new Promise((r) => setTimeout(r, 25));
  await settle();
  const base = reading();
  if (snapDir) writeHeapSnapshot(join(snapDir, 'base.heapsnapshot'));
  child.send({ port, open: N }); const { opened } = await next();
  // --no-gc: read as the benchmark does, without forcing collections once the tunnels are open.
  if (args.includes('--no-gc')) await new Promise((r) => setTimeout(r, 1000));
  else await settle();
  const held = reading();
  if (snapDir) writeHeapSnapshot(join(snapDir, `held-${N}.heapsnapshot`));
  // What a full collection costs with these tunnels held.
  const t0 = performance.now(); if (!args.includes('--no-gc')) globalThis.gc(); const fullGcMs = (performance.now() - t0).toFixed(1);
  const kib = (b) => (b / 1024 / opened).toFixed(2);
  const snap = proxy.stats.snapshot().tunnels;
  const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  console.log(JSON.stringify({ fullGcMs, newSpaceKiB: Math.round((newSpace?.space_size ?? 0) / 1024),
    tunnels: opened, open: snap.open, native: snap.native ?? null,
    rssPerTunnelKiB: kib(held.rss - base.rss), heapPerTunnelKiB: kib(held.heap - base.heap), externalPerTunnelKiB: kib(held.ext - base.ext),
    heapCommittedPerTunnelKiB: kib(held.heapTotal - base.heapTotal),
    spacesPerTunnelKiB: Object.fromEntries(Object.keys(held.spaces).map((k) => [k, kib(held.spaces[k] - (base.spaces[k] ?? 0))]).filter(([, v]) => v !== '0.00')),
  }));
  if (args.includes('--give-back')) {
    const { createRequire } = await import('node:module');
    const addon = createRequire(import.meta.url)(join(root, 'native/memory/build/Release/sluice_memory.node'));
    const { PerformanceObserver } = await import('node:perf_hooks');
    const pauses = [];
    const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) pauses.push(Number(e.duration.toFixed(1))); });
    obs.observe({ entryTypes: ['gc'] });
    const newSpaceSize = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    const before = newSpaceSize();
    const t1 = performance.now();
    addon.reduceMemory();
    const callMs = (performance.now() - t1).toFixed(1);
    for (let i = 0; i < 100 && newSpaceSize() > 2 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 50));
    const giveBackMs = (performance.now() - t1).toFixed(0);
    await new Promise((r) => setTimeout(r, 50));
    obs.disconnect();
    const after = newSpaceSize();
    console.log(JSON.stringify({ callMs, giveBackMs, gcPausesMs: pauses, newSpaceKiBBefore: Math.round(before / 1024), newSpaceKiBAfter: Math.round(after / 1024), rssPerTunnelKiBAfterGiveBack: kib(reading().rss - base.rss) }));
  }
  const waitMs = Number(opt('--wait-after', '0'));
  if (waitMs > 0) {
    // Time for an outside look at the process (gdb, /proc/PID/smaps) with the tunnels held.
    console.error(`pid ${process.pid}: waiting ${waitMs} ms`);
    await new Promise((r) => setTimeout(r, waitMs));
    console.log(JSON.stringify({ rssPerTunnelKiBAfterWait: kib(reading().rss - base.rss) }));
  }
  child.send({ closeAll: true }); await next();
  await proxy.destroy();
  child.send({ exit: true });
  await once(child, 'exit');
  process.exit(0);
}
