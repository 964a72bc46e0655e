#!/usr/bin/env node
/**
 * What one WebSocket handshake costs the proxy, in figures the machine's load barely moves: bytes
 * the JavaScript heap allocated and promoted per handshake (v8.GCProfiler: the used heap before
 * each collection minus after the previous one; promoted: old-generation growth across
 * scavenges), and with `--strace` the system calls per handshake of every thread of the proxy
 * process (`strace -c -f -p`, attached after the warm-up). Sluice (dist/, `startProxy`, the bench
 * target's routing: one location, keepalive upstream, the Upgrade/Connection map, no access log)
 * runs in this process; the backend and the openers (connect, handshake, read the 101, close,
 * again) in a child. CPU time per handshake is printed too, but that one does depend on the load.
 *
 * `--alloc-sites N` adds the N functions that allocated most over the measured handshakes (V8's
 * sampling heap profiler, collected objects included), in bytes per handshake.
 *
 * `--location 'LINES'` adds directives to the location (e.g. the WebSocket guardrails).
 * `--strace-log FILE` writes strace's log of every call instead (`-f -tt`), to read one handshake's calls.
 * `--root DIR` runs the proxy of another built checkout (its dist/, `startProxy`); the backend and
 * the openers stay this checkout's, so two builds meet the same client.
 * `--v8 'FLAGS'` sets V8 flags in this process before the proxy starts (`v8.setFlagsFromString`),
 * e.g. `--v8 --semi-space-growth-factor=1`, what the `sluice` command sets for itself
 * (src/cli/memory-settings.ts) and `startProxy` in this process does not.
 * `--cpu-prof FILE` writes a CPU profile of this process's JavaScript thread over the measured
 * handshakes only (inspector, 100 µs sampling; sum it with scripts/cpu-profile-summary.mjs --per N).
 * The collections over the measured handshakes are printed by kind (count and the main thread's
 * time in them per handshake, from v8.GCProfiler), with the bytes promoted per handshake.
 *
 *   node scripts/handshake-cost.mjs [--handshakes 3000] [--warmup 1000] [--openers 50] [--strace | --strace-log FILE] [--alloc-sites 25] [--location 'LINES'] [--root DIR] [--v8 'FLAGS'] [--cpu-prof FILE]
 */
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { GCProfiler, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { allocationSites } from './alloc-sites.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i < 0 ? dflt : args[i + 1]; };
const root = fileURLToPath(new URL('..', import.meta.url));
// Set first, as the sluice command sets its own before any other module allocates.
const v8Flags = opt('--v8', '');
if (args[0] !== '--child' && v8Flags !== '') setFlagsFromString(v8Flags);

/** Threads Node starts with (V8's platform workers, libuv's): the native addon's I/O thread comes later. */
const startThreads = new Set(readdirSync('/proc/self/task'));

/** CPU ms (utime+stime) of this process's threads: the JavaScript thread, Node's own others, those started since (the addon's). */
function threadCpu() {
  const out = {};
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = Number(tid) === process.pid ? 'main' : startThreads.has(tid) ? 'node' : 'addon';
      out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      // a thread that ended meanwhile
    }
  }
  return out;
}

if (args[0] === '--child') {
  const { startHttpBackend } = await import(join(root, 'dist/test/helpers/backends.js'));
  const { rawConnect, readUntil, wsHandshakeRequest } = await import(join(root, 'dist/test/helpers/raw-client.js'));
  const backend = await startHttpBackend();
  process.send({ backend: backend.addr });
  const request = wsHandshakeRequest({ path: '/ws' });
  process.on('message', async (m) => {
    if (m.exit) {
      await backend.close();
      process.exit(0);
    }
    let left = m.handshakes;
    let failed = 0;
    const opener = async () => {
      while (left-- > 0) {
        const s = await rawConnect(m.port, { timeoutMs: 30_000 });
        s.write(request);
        const head = (await readUntil(s, '\r\n\r\n', 30_000)).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101')) failed++;
        s.destroy();
      }
    };
    await Promise.all(Array.from({ length: m.openers }, opener));
    process.send({ done: true, failed });
  });
} else {
  const { startProxy } = await import(join(opt('--root', root), 'dist/src/index.js'));
  const n = Number(opt('--handshakes', '3000'));
  const warmup = Number(opt('--warmup', '1000'));
  const openers = Number(opt('--openers', '50'));
  // --strace-log FILE: every call of every thread, for reading (no counts printed).
  const straceLog = opt('--strace-log', null);
  const traced = args.includes('--strace') || straceLog !== null;
  const sites = Number(opt('--alloc-sites', '0'));
  // --location 'LINES': more directives in the location (the bench's guardrails scenario, say).
  const location = opt('--location', '');
  const child = fork(fileURLToPath(import.meta.url), ['--child'], { stdio: 'inherit', execArgv: [] });
  const [{ backend }] = await once(child, 'message');
  const proxy = await startProxy({ text: `events { worker_connections 20000; } http { access_log off;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream app { server ${backend}; keepalive 64; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://app; proxy_http_version 1.1;
      proxy_read_timeout 3600s; proxy_send_timeout 3600s;
      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; ${location} } } }` });
  const port = proxy.listeners[0].port;
  const round = async (handshakes) => {
    child.send({ port, handshakes, openers });
    const [m] = await once(child, 'message');
    if (m.failed > 0) throw new Error(`${m.failed} handshakes did not get a 101`);
    // The tunnels' ends (the addon's reports) come after the openers' closes.
    await new Promise((r) => setTimeout(r, 200));
  };
  await round(warmup);

  let strace = null;
  const straceOut = join(tmpdir(), `handshake-cost-${process.pid}.strace`);
  if (traced) {
    const how = straceLog === null ? ['-c', '-o', straceOut] : ['-tt', '-o', straceLog];
    strace = spawn('strace', ['-f', ...how, '-p', String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    // Attached once it has said so for the main thread.
    await new Promise((resolve) => strace.stderr.on('data', (d) => { if (String(d).includes('attached')) resolve(); }));
    await new Promise((r) => setTimeout(r, 300));
  }
  let inspector = null;
  if (sites > 0) {
    inspector = new Session();
    inspector.connect();
    await inspector.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  const cpuProf = opt('--cpu-prof', null);
  let profSession = null;
  if (cpuProf !== null) {
    profSession = new Session();
    profSession.connect();
    await profSession.post('Profiler.enable');
    await profSession.post('Profiler.setSamplingInterval', { interval: 100 });
    await profSession.post('Profiler.start');
  }
  const profiler = new GCProfiler();
  const used0 = getHeapStatistics().used_heap_size;
  profiler.start();
  const threads0 = threadCpu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await round(n);
  // The round's 200 ms wait for the tunnels' ends is not handshake time.
  const seconds = (performance.now() - t0 - 200) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const threads1 = threadCpu();
  if (profSession !== null) {
    const { profile } = await profSession.post('Profiler.stop');
    writeFileSync(cpuProf, JSON.stringify(profile));
    profSession.disconnect();
  }
  const threadUs = Object.fromEntries(Object.entries(threads1).map(([k, v]) => [k, Math.round(((v - (threads0[k] ?? 0)) * 1000) / n)]).filter(([, v]) => v > 0));
  const usedEnd = getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let allocated = 0;
  let promoted = 0;
  let last = used0;
  const gcByKind = {};
  for (const gc of statistics) {
    const kind = (gcByKind[gc.gcType] ??= { count: 0, usPerHandshake: 0 });
    kind.count++;
    kind.usPerHandshake += gc.cost / n;
    allocated += gc.beforeGC.heapStatistics.usedHeapSize - last;
    last = gc.afterGC.heapStatistics.usedHeapSize;
    if (gc.gcType === 'Scavenge') {
      const old = (s) => s.heapSpaceStatistics.find((x) => x.spaceName === 'old_space').spaceUsedSize;
      promoted += old(gc.afterGC) - old(gc.beforeGC);
    }
  }
  allocated += usedEnd - last;
  let allocSites = null;
  if (inspector !== null) {
    const { profile } = await inspector.post('HeapProfiler.stopSampling');
    allocSites = allocationSites(profile, n, sites);
    inspector.disconnect();
  }
  let syscalls = null;
  if (strace !== null) {
    strace.kill('SIGINT');
    await once(strace, 'exit');
  }
  if (strace !== null && straceLog === null) {
    syscalls = {};
    for (const line of readFileSync(straceOut, 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      // % time, seconds, usecs/call, calls, [errors], syscall
      if (f.length >= 5 && /^\d+\.\d+$/.test(f[0]) && f[f.length - 1] !== 'total') {
        syscalls[f[f.length - 1]] = Number((Number(f[3]) / n).toFixed(2));
      }
    }
    rmSync(straceOut, { force: true });
  }
  console.log(JSON.stringify({
    handshakes: n, openers, handshakesPerSecond: Math.round(n / seconds), cpuUsPerHandshake: Math.round((cpu.user + cpu.system) / n), cpuUsPerHandshakeByThread: threadUs,
    allocatedBytesPerHandshake: Math.round(allocated / n), promotedBytesPerHandshake: Math.round(promoted / n), gcs: statistics.length,
    gcByKind: Object.fromEntries(Object.entries(gcByKind).map(([k, v]) => [k, { count: v.count, usPerHandshake: Number(v.usPerHandshake.toFixed(1)) }])),
    ...(allocSites === null ? {} : { allocationSitesBytesPerHandshake: allocSites }),
    ...(syscalls === null ? {} : { syscallsPerHandshake: syscalls, syscallTotalPerHandshake: Number(Object.values(syscalls).reduce((a, b) => a + b, 0).toFixed(2)) }),
  }));
  child.send({ exit: true });
  await proxy.destroy();
  await once(child, 'exit');
  process.exit(0);
}
