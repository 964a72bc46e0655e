#!/usr/bin/env node
/**
 * What V8's young-generation sizing costs per WebSocket handshake, measured in process: Sluice
 * (dist/, `startProxy`) runs here, the backend and 50 openers (connect, handshake, close, again)
 * in a child. Prints the proxy process's CPU time per handshake and its garbage collections
 * (count and main-thread time by kind, from perf_hooks) over a fixed number of handshakes.
 * Compare `--v8 --semi-space-growth-factor=1` (what the sluice command sets for itself,
 * cli/memory-settings.ts) with V8's default growth, alternating runs on a noisy machine.
 *
 *   node scripts/handshake-gc.mjs [--handshakes 6000] [--v8 '--semi-space-growth-factor=1']
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString, getHeapSpaceStatistics } from 'node:v8';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i < 0 ? dflt : args[i + 1]; };
const root = fileURLToPath(new URL('..', import.meta.url));

if (args[0] === '--child') {
  const { startHttpBackend } = await import(join(root, 'dist/test/helpers/backends.js'));
  const { rawConnect, readUntil, wsHandshakeRequest } = await import(join(root, 'dist/test/helpers/raw-client.js'));
  const backend = await startHttpBackend();
  process.send({ backend: backend.addr });
  const [m] = await once(process, 'message');
  let left = m.handshakes;
  const opener = async () => {
    while (left-- > 0) {
      const s = await rawConnect(m.port, { timeoutMs: 30_000 });
      s.write(wsHandshakeRequest({ path: '/ws' }));
      await readUntil(s, '\r\n\r\n', 30_000);
      s.destroy();
    }
  };
  await Promise.all(Array.from({ length: 50 }, opener));
  process.send({ done: true });
  await backend.close();
  process.exit(0);
} else {
  const flags = opt('--v8', null);
  if (flags) setFlagsFromString(flags);
  const { startProxy } = await import(join(root, 'dist/src/index.js'));
  const n = Number(opt('--handshakes', '6000'));
  const child = fork(fileURLToPath(import.meta.url), ['--child'], { stdio: 'inherit' });
  const [{ backend }] = await once(child, 'message');
  const proxy = await startProxy({ text: `events { worker_connections 20000; } http { access_log off;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream app { server ${backend}; keepalive 64; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; } } }` });
  const gcs = { minor: [0, 0], major: [0, 0] };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const k = e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : 'major';
      gcs[k][0]++; gcs[k][1] += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const cpu0 = process.cpuUsage();
  child.send({ port: proxy.listeners[0].port, handshakes: n });
  await once(child, 'message');
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, 100));
  obs.disconnect();
  const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
  console.log(JSON.stringify({
    v8: flags ?? 'default', handshakes: n, cpuUsPerHandshake: ((cpu.user + cpu.system) / n).toFixed(0),
    minorGcs: gcs.minor[0], minorGcMsTotal: gcs.minor[1].toFixed(0), majorGcs: gcs.major[0], majorGcMsTotal: gcs.major[1].toFixed(0),
    gcUsPerHandshake: (((gcs.minor[1] + gcs.major[1]) * 1000) / n).toFixed(1), newSpaceKiB: newSpace / 1024,
  }));
  await proxy.destroy();
  await once(child, 'exit');
  process.exit(0);
}
