/**
 * The HTTP floor experiment: where a proxied plain-HTTP request's CPU goes in Node, measured by
 * running, interleaved, proxies that each do less than Sluice (bench/http-floor-server.ts) in
 * front of the benchmark's echo backend, with nginx as the yardstick:
 *
 *   sluice       the real thing (one process, the benchmark's config)
 *   node-proxy   Node's http server + http.request on a keep-alive agent, nothing else
 *   node-server  Node's http server, the upstream side on raw pooled sockets
 *   raw-proxy    net sockets and a head scanner: no http module at all
 *   node-answer  Node's http server answering by itself (what the client side alone costs)
 *   nginx        worker_processes 1
 *
 * `node dist/bench/http-floor.js [--reps N] [--seconds S]` prints proxy CPU µs per request and
 * requests/s for each (median over repetitions) and the ratios to nginx. docs/benchmarks.md
 * quotes a run. Not part of `npm run bench`: it answers one question, once per change that
 * touches the HTTP path.
 */
import { fileURLToPath } from 'node:url';
import { cpuMicros } from './procfs.js';
import { installCleanupHooks, killAll, startChild } from './processes.js';
import type { RunningTarget } from './targets.js';
import { startBackend, startTarget } from './targets.js';
import { ensureTools } from './tools.js';
import { runWrk } from './wrk.js';

const FLOOR_JS = fileURLToPath(new URL('./http-floor-server.js', import.meta.url));
const VARIANTS = ['sluice', 'node-proxy', 'node-server', 'raw-proxy', 'node-answer', 'nginx'] as const;
type Variant = (typeof VARIANTS)[number];

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function startVariant(v: Variant, backendPort: number, tools: ReturnType<typeof ensureTools>): Promise<RunningTarget> {
  if (v === 'sluice' || v === 'nginx') return startTarget(v, backendPort, tools);
  const child = startChild(v, process.execPath, [FLOOR_JS, v, String(backendPort)], { ipc: true });
  const m = await child.waitForLine(/listening on 127\.0\.0\.1:(\d+)/, 15_000);
  return { name: 'sluice', port: Number(m[1]), pid: child.pid, crashed: () => null, stop: () => child.stop() };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  installCleanupHooks();
  const reps = arg('--reps', 3);
  const seconds = arg('--seconds', 3);
  const tools = ensureTools(['nginx', 'wrk'], (l) => process.stderr.write(`${l}\n`));
  const wrk = tools.wrk.bin;
  if (!wrk || !tools.nginx.bin) throw new Error(`${tools.wrk.note ?? ''} ${tools.nginx.note ?? ''}`);
  const backend = await startBackend();
  const cpu = new Map<Variant, number[]>();
  const rps = new Map<Variant, number[]>();
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const v of VARIANTS) {
        const target = await startVariant(v, backend.port, tools);
        try {
          const url = `http://127.0.0.1:${target.port}/bytes/2`;
          await runWrk(wrk, url, 50, 1);
          const c0 = cpuMicros(target.pid as number);
          const r = await runWrk(wrk, url, 50, seconds);
          const c1 = cpuMicros(target.pid as number);
          if (r.errors > 0) throw new Error(`${v}: ${r.errorText}`);
          (cpu.get(v) ?? cpu.set(v, []).get(v)!).push((c1 - c0) / r.requests);
          (rps.get(v) ?? rps.set(v, []).get(v)!).push(r.requestsPerSec);
          process.stderr.write(`rep ${rep + 1} ${v}: ${r.requestsPerSec.toFixed(0)} req/s, ${((c1 - c0) / r.requests).toFixed(1)} µs/req\n`);
        } finally {
          await target.stop();
        }
      }
    }
  } finally {
    await backend.stop();
  }
  const nginxCpu = median(cpu.get('nginx') ?? []);
  const nginxRps = median(rps.get('nginx') ?? []);
  const lines = [
    `HTTP floor, GET 2 B through each, wrk -t1 -c50, ${reps} repetition(s) of ${seconds} s, medians`,
    '',
    '| variant | requests/s | proxy CPU µs per request | CPU / nginx | requests/s / nginx |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const v of VARIANTS) {
    const c = median(cpu.get(v) ?? []);
    const r = median(rps.get(v) ?? []);
    lines.push(`| ${v} | ${r.toFixed(0)} | ${c.toFixed(1)} | ${(c / nginxCpu).toFixed(2)} | ${(r / nginxRps).toFixed(2)} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(() => killAll(), (e: unknown) => {
  process.stderr.write(`http-floor: ${(e as Error).stack ?? String(e)}\n`);
  killAll();
  process.exitCode = 2;
});
