/**
 * The seven scenarios. Each cell (one scenario setting, one target, one repetition) starts its own
 * echo backend, target and driver processes and stops them all before it returns, whatever
 * happens. Proxy CPU is read from procfs at the start and end of the measured window; the
 * drivers count messages between their own `mark` and `stop`, and each rate is taken over its own
 * clock (proxy CPU over the harness's window, messages over the driver's).
 */
import { Driver } from './driver-client.js';
import type { OpenResult, WindowStats } from './driver-protocol.js';
import { Histogram } from './histogram.js';
import type { GuardrailVariant, Plan, ScenarioName } from './plan.js';
import { GUARDRAILS, smallDepth } from './plan.js';
import { cpuMicros, openFiles, peakRssKiB, rssKiB } from './procfs.js';
import { startBackend, startTarget } from './targets.js';
import type { Backend, RunningTarget, TargetName } from './targets.js';
import type { ToolName, ToolStatus } from './tools.js';
import { runWrk } from './wrk.js';

/** One JSON line of the results file. */
export interface CellRecord {
  readonly type: 'cell';
  readonly run: string;
  readonly scenario: ScenarioName;
  /** The scenario setting, the same for every target and repetition ("64 B x 50 conns"). */
  readonly cell: string;
  readonly params: Readonly<Record<string, number>>;
  readonly target: TargetName;
  readonly rep: number;
  readonly metrics: Record<string, number>;
  readonly errors: string[];
  readonly notes: string[];
  readonly at: string;
}

export interface CellSpec {
  readonly scenario: ScenarioName;
  readonly cell: string;
  readonly params: Readonly<Record<string, number>>;
  /** The guardrails scenario's variant: what the Sluice target's location adds. */
  readonly guardrail?: GuardrailVariant;
}

export interface RunContext {
  readonly run: string;
  readonly plan: Plan;
  readonly tools: Partial<Record<ToolName, ToolStatus>>;
}

/** Source addresses for client connections: 127.0.0.2-41, so no single address runs out of ports. */
export const SOURCES: readonly string[] = Array.from({ length: 40 }, (_, i) => `127.0.0.${i + 2}`);

/** Tunnels one driver process holds at most (each is one descriptor there; the limit is 20,000). */
const PER_DRIVER = 3_500;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sizeLabel(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KB`;
  return `${n} B`;
}

/** Every cell of the plan, in run order (targets and repetitions are looped inside each cell). */
export function cellsOf(plan: Plan): CellSpec[] {
  const out: CellSpec[] = [];
  for (const s of plan.scenarios) {
    switch (s) {
      case 'idle':
        // One cell: a repetition ramps through every step in one proxy process.
        out.push({ scenario: s, cell: `ramp ${plan.idle.steps.join('/')}`, params: { maxTunnels: Math.max(...plan.idle.steps) } });
        break;
      case 'handshakes':
        for (const c of plan.handshakes.concurrency) out.push({ scenario: s, cell: `${c} openers`, params: { concurrency: c } });
        break;
      case 'small':
        for (const size of plan.small.sizes)
          for (const conns of plan.small.conns)
            out.push({ scenario: s, cell: `${sizeLabel(size)} x ${conns} conns`, params: { size, conns, depth: smallDepth(conns) } });
        // One message in flight per connection: each message waits for the proxy's round trip.
        for (const conns of plan.small.shallow) out.push({ scenario: s, cell: `64 B x ${conns} conns, depth 1`, params: { size: 64, conns, depth: 1 } });
        break;
      case 'large':
        for (const size of plan.large.sizes) out.push({ scenario: s, cell: `${sizeLabel(size)} x ${plan.large.conns} conns`, params: { size, conns: plan.large.conns } });
        break;
      case 'latency':
        out.push({
          scenario: s,
          cell: `${plan.latency.rate} msg/s over ${plan.latency.conns} conns, ${sizeLabel(plan.latency.size)}`,
          params: { rate: plan.latency.rate, conns: plan.latency.conns, size: plan.latency.size },
        });
        break;
      case 'http':
        for (const b of plan.http.bodies) out.push({ scenario: s, cell: `${sizeLabel(b)} body`, params: { body: b, conns: plan.http.conns } });
        break;
      case 'guardrails': {
        const g = plan.guardrails;
        for (const v of g.variants) {
          out.push({ scenario: s, cell: `${v}, ${sizeLabel(g.size)} x ${g.conns} conns`, params: { size: g.size, conns: g.conns, depth: smallDepth(g.conns) }, guardrail: v });
        }
        break;
      }
      case 'cache':
        for (const b of plan.cache.bodies) out.push({ scenario: s, cell: `${sizeLabel(b)} cached`, params: { body: b, conns: plan.cache.conns } });
        break;
    }
  }
  return out;
}

/** Targets that take WebSocket handshakes only (the C handshake experiment): they sit out plain HTTP and guardrails. */
const WEBSOCKET_ONLY: ReadonlySet<TargetName> = new Set(['sluice-c-handshake', 'sluice-c-handshake-c-route']);

const NONE: ReadonlySet<TargetName> = new Set();

/** Worker-process targets: the guardrails scenario leaves them out (the same relay, a third more time). */
const WORKER_TARGETS: ReadonlySet<TargetName> = new Set(['sluice-workers', 'sluice-workers-rr', 'sluice-reuseport']);

/** Targets without a response cache: they sit out the cache scenario. */
const NO_CACHE: ReadonlySet<TargetName> = new Set(['direct', 'http-proxy']);

/**
 * Targets that take part in a scenario (idle tunnels need a proxy in the path, the cache scenario
 * a cache). The guardrails scenario is Sluice's alone, and runs the native relay (`sluice`) beside
 * the TypeScript relay (`sluice-ts-tunnel`), without the worker targets; `sluice-ts-tunnel` takes
 * part elsewhere only when named.
 */
export function targetsFor(scenario: ScenarioName, targets: readonly TargetName[], handshakesOnly: ReadonlySet<TargetName> = NONE): TargetName[] {
  if (scenario !== 'handshakes') targets = targets.filter((t) => !handshakesOnly.has(t));
  if (scenario === 'guardrails') {
    // Worker processes run the same relay: they add a third of the scenario's time and nothing to compare.
    const own = targets.filter((t) => t.startsWith('sluice') && !WORKER_TARGETS.has(t) && !WEBSOCKET_ONLY.has(t));
    return own.includes('sluice') && !own.includes('sluice-ts-tunnel') ? [...own, 'sluice-ts-tunnel'] : own;
  }
  return targets.filter((t) => !(scenario === 'idle' && t === 'direct') && !(scenario === 'cache' && NO_CACHE.has(t))
    && !((scenario === 'http' || scenario === 'cache') && WEBSOCKET_ONLY.has(t)));
}

/** Everything a cell started, stopped in reverse order. */
class Resources {
  readonly #stops: (() => Promise<void>)[] = [];
  add(stop: () => Promise<void>): void {
    this.#stops.push(stop);
  }
  async stopAll(): Promise<void> {
    for (const stop of this.#stops.splice(0).reverse()) {
      try {
        await stop();
      } catch {
        // keep stopping the rest
      }
    }
  }
}

interface Setup {
  readonly backend: Backend;
  readonly target: RunningTarget;
  readonly drivers: Driver[];
}

async function setUp(res: Resources, ctx: RunContext, target: TargetName, drivers: number, sluiceLocation = ''): Promise<Setup> {
  const backend = await startBackend();
  res.add(() => backend.stop());
  const t = await startTarget(target, backend.port, ctx.tools, sluiceLocation);
  res.add(() => t.stop());
  const ds: Driver[] = [];
  for (let i = 0; i < drivers; i++) {
    const d = new Driver(`driver-${i}`);
    res.add(() => d.stopProcess());
    ds.push(d);
  }
  return { backend, target: t, drivers: ds };
}

async function openAll(s: Setup, count: number, concurrency: number, errors: string[]): Promise<OpenResult[]> {
  const n = s.drivers.length;
  const results = await Promise.all(
    s.drivers.map((d, i) => {
      const share = Math.floor(count / n) + (i < count % n ? 1 : 0);
      return d.open({ host: '127.0.0.1', port: s.target.port, path: '/', count: share, sources: SOURCES, concurrency, timeoutMs: 10_000 });
    }),
  );
  const failed = results.reduce((a, r) => a + r.failed, 0);
  if (failed > 0) errors.push(`${failed} of ${count} WebSocket handshakes failed: ${[...new Set(results.flatMap((r) => r.errorSamples))].join('; ')}`);
  return results;
}

interface Window {
  readonly stats: WindowStats;
  readonly hist: Histogram;
  /** Proxy CPU per second of window, microseconds (NaN without a proxy). */
  readonly proxyCpuUsPerSec: number;
  /** Events (messages or handshakes) per second, by the drivers' clocks. */
  readonly ratePerSec: number;
  readonly driverCpuPct: number;
}

/** Marks every driver, waits `ms`, stops them, and reads the proxy's CPU around it. */
async function measure(s: Setup, ms: number, drainMs: number, what: 'messages' | 'handshakes'): Promise<Window> {
  await Promise.all(s.drivers.map((d) => d.mark()));
  const pid = s.target.pid;
  const c0 = pid ? cpuMicros(pid) : NaN;
  const t0 = performance.now();
  await sleep(ms);
  const c1 = pid ? cpuMicros(pid) : NaN;
  const t1 = performance.now();
  const all = await Promise.all(s.drivers.map((d) => d.stop(drainMs)));
  const hist = new Histogram();
  let count = 0;
  let wall = 0;
  let driverCpu = 0;
  let errors = 0;
  const samples: string[] = [];
  let backlog = 0;
  let undrained = 0;
  let handshakes = 0;
  let messages = 0;
  for (const st of all) {
    hist.merge(st.hist);
    count += what === 'messages' ? st.messages : st.handshakes;
    messages += st.messages;
    handshakes += st.handshakes;
    wall = Math.max(wall, st.wallMs);
    driverCpu += st.cpuUs;
    errors += st.errors;
    samples.push(...st.errorSamples);
    backlog += st.backlog;
    undrained += st.undrained;
  }
  const stats: WindowStats = { messages, handshakes, hist: hist.toJSON(), cpuUs: driverCpu, wallMs: wall, errors, errorSamples: samples, backlog, undrained };
  return {
    stats,
    hist,
    proxyCpuUsPerSec: ((c1 - c0) / (t1 - t0)) * 1000,
    ratePerSec: (count / wall) * 1000,
    driverCpuPct: (driverCpu / (wall * 1000)) * 100 / s.drivers.length,
  };
}

function windowErrors(w: Window, errors: string[], expect: 'messages' | 'handshakes' | null): void {
  if (w.stats.errors > 0) errors.push(`${w.stats.errors} driver errors: ${[...new Set(w.stats.errorSamples)].join('; ')}`);
  if (expect && w.stats[expect] === 0) errors.push(`no ${expect} completed in the measured window`);
}

const ms = (us: number): number => us / 1000;

/** Runs one cell for one target and repetition; returns one record (several for the idle ramp). */
export async function runCell(ctx: RunContext, spec: CellSpec, target: TargetName, rep: number): Promise<CellRecord[]> {
  const res = new Resources();
  const records: CellRecord[] = [];
  const base = (cell: string, params: Record<string, number>) => ({
    type: 'cell' as const,
    run: ctx.run,
    scenario: spec.scenario,
    cell,
    params,
    target,
    rep,
    metrics: {} as Record<string, number>,
    errors: [] as string[],
    notes: [] as string[],
    at: new Date().toISOString(),
  });
  // A handshake cell's record says its warm-up (the plan's, or --handshake-warmup's): how settled
  // each process's JIT was is part of what the cell measured.
  const rec = base(spec.cell, spec.scenario === 'handshakes' ? { ...spec.params, warmupMs: ctx.plan.handshakes.warmupMs } : { ...spec.params });
  let started: Setup | undefined;
  const setUpCell = async (drivers: number): Promise<Setup> =>
    (started = await setUp(res, ctx, target, drivers, spec.guardrail === undefined ? '' : GUARDRAILS[spec.guardrail]));
  try {
    switch (spec.scenario) {
      case 'idle':
        await idle(res, ctx, target, base, records);
        return records;
      case 'handshakes': {
        const p = ctx.plan.handshakes;
        const s = await setUpCell(1);
        await s.drivers[0]!.request({ cmd: 'handshakes', host: '127.0.0.1', port: s.target.port, path: '/', sources: SOURCES, concurrency: spec.params.concurrency!, timeoutMs: 5000 }, 10_000);
        await sleep(p.warmupMs);
        const w = await measure(s, p.windowMs, 5000, 'handshakes');
        windowErrors(w, rec.errors, 'handshakes');
        Object.assign(rec.metrics, {
          handshakesPerSec: w.ratePerSec,
          cpuUsPerHandshake: w.proxyCpuUsPerSec / w.ratePerSec,
          proxyCpuPct: w.proxyCpuUsPerSec / 1e4,
          p50Ms: ms(w.hist.percentile(50)),
          p99Ms: ms(w.hist.percentile(99)),
          driverCpuPct: w.driverCpuPct,
        });
        break;
      }
      case 'small':
      case 'large':
      case 'guardrails': {
        const p = spec.scenario === 'large' ? ctx.plan.large : spec.scenario === 'small' ? ctx.plan.small : ctx.plan.guardrails;
        const size = spec.params.size!;
        const conns = spec.params.conns!;
        const s = await setUpCell(1);
        await openAll(s, conns, 50, rec.errors);
        const depth = spec.scenario === 'large' ? 1 : spec.params.depth!;
        await s.drivers[0]!.request({ cmd: 'closedLoop', size, depth }, 5000);
        await sleep(p.warmupMs);
        const w = await measure(s, p.windowMs, 10_000, 'messages');
        windowErrors(w, rec.errors, 'messages');
        if (w.stats.undrained > 0) rec.errors.push(`${w.stats.undrained} messages never came back`);
        Object.assign(rec.metrics, {
          msgsPerSec: w.ratePerSec,
          cpuUsPerMsg: w.proxyCpuUsPerSec / w.ratePerSec,
          proxyCpuPct: w.proxyCpuUsPerSec / 1e4,
          p50Ms: ms(w.hist.percentile(50)),
          p99Ms: ms(w.hist.percentile(99)),
          driverCpuPct: w.driverCpuPct,
        });
        if (spec.scenario === 'large') {
          rec.metrics.MBps = (w.ratePerSec * size) / 1e6;
          if (s.target.pid) rec.metrics.peakRssMiB = peakRssKiB(s.target.pid) / 1024;
        }
        break;
      }
      case 'latency': {
        const p = ctx.plan.latency;
        const s = await setUpCell(1);
        await openAll(s, p.conns, 50, rec.errors);
        await s.drivers[0]!.request({ cmd: 'openLoop', size: p.size, rate: p.rate }, 5000);
        await sleep(p.warmupMs);
        const w = await measure(s, p.windowMs, 5000, 'messages');
        windowErrors(w, rec.errors, 'messages');
        if (w.stats.undrained > 0) rec.errors.push(`${w.stats.undrained} messages never came back`);
        Object.assign(rec.metrics, {
          msgsPerSec: w.ratePerSec,
          p50Ms: ms(w.hist.percentile(50)),
          p99Ms: ms(w.hist.percentile(99)),
          p999Ms: ms(w.hist.percentile(99.9)),
          maxMs: ms(w.hist.max),
          samples: w.hist.count,
          proxyCpuPct: w.proxyCpuUsPerSec / 1e4,
          driverCpuPct: w.driverCpuPct,
        });
        if (!Number.isFinite(w.proxyCpuUsPerSec)) delete rec.metrics.proxyCpuPct;
        break;
      }
      case 'http':
      case 'cache': {
        const p = spec.scenario === 'http' ? ctx.plan.http : ctx.plan.cache;
        const wrk = ctx.tools.wrk?.bin;
        if (!wrk) throw new Error(ctx.tools.wrk?.note ?? 'wrk is not available');
        const s = await setUpCell(0);
        const path = `${spec.scenario === 'cache' ? '/cached' : ''}/bytes/${spec.params.body}`;
        const url = `http://127.0.0.1:${s.target.port}${path}`;
        // The cache scenario measures hits only: the entry must be in place before the window.
        if (spec.scenario === 'cache') await checkCached(s.target.port, path, rec.errors);
        if (p.warmupS > 0) await runWrk(wrk, url, p.conns, p.warmupS);
        const pid = s.target.pid;
        const c0 = pid ? cpuMicros(pid) : NaN;
        const t0 = performance.now();
        const r = await runWrk(wrk, url, p.conns, p.durationS);
        const c1 = pid ? cpuMicros(pid) : NaN;
        const t1 = performance.now();
        if (r.errors > 0) rec.errors.push(`wrk: ${r.errorText}`);
        if (r.requests === 0) rec.errors.push('wrk completed no request');
        const cpuPerSec = ((c1 - c0) / (t1 - t0)) * 1000;
        Object.assign(rec.metrics, {
          requestsPerSec: r.requestsPerSec,
          cpuUsPerRequest: (c1 - c0) / r.requests,
          proxyCpuPct: cpuPerSec / 1e4,
          p50Ms: r.p50Ms,
          p99Ms: r.p99Ms,
        });
        break;
      }
    }
    // A proxy-less target has no proxy figures.
    for (const k of Object.keys(rec.metrics)) if (!Number.isFinite(rec.metrics[k]!)) delete rec.metrics[k];
    const crash = started?.target.crashed();
    if (crash) rec.errors.push(crash);
    else if (started?.target.pid) rec.metrics.openFiles = openFiles(started.target.pid);
  } catch (e) {
    rec.errors.push((e as Error).message.split('\n').slice(0, 6).join(' | '));
  } finally {
    await res.stopAll();
  }
  records.push(rec);
  return records;
}

/**
 * Fills the target's cache with `path` and checks that the next request is a hit (every target
 * with a cache sends `X-Cache-Status: HIT` for one); a miss is an error of the cell.
 */
async function checkCached(port: number, path: string, errors: string[]): Promise<void> {
  let status = '';
  for (let i = 0; i < 3 && status !== 'HIT'; i++) {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    await r.arrayBuffer();
    status = r.headers.get('x-cache-status') ?? '';
  }
  if (status !== 'HIT') errors.push(`GET ${path} is not answered from the cache (X-Cache-Status: ${status || 'none'})`);
}

async function idle(
  res: Resources,
  ctx: RunContext,
  target: TargetName,
  base: (cell: string, params: Record<string, number>) => CellRecord,
  records: CellRecord[],
): Promise<void> {
  const p = ctx.plan.idle;
  const max = Math.max(...p.steps);
  let s: Setup;
  try {
    s = await setUp(res, ctx, target, Math.max(1, Math.ceil(max / PER_DRIVER)));
  } catch (e) {
    const r = base(`${p.steps[0]} tunnels`, { tunnels: p.steps[0]! });
    r.errors.push((e as Error).message.split('\n').slice(0, 6).join(' | '));
    records.push(r);
    return;
  }
  const pid = s.target.pid!;
  // Warm up: a few tunnels with traffic, then closed, so code paths are loaded before the baseline.
  const warmErrors: string[] = [];
  await openAll({ ...s, drivers: [s.drivers[0]!] }, 20, 20, warmErrors);
  await s.drivers[0]!.request({ cmd: 'closedLoop', size: 64, depth: 1 }, 5000);
  await sleep(100);
  await s.drivers[0]!.stop(2000);
  await s.drivers[0]!.closeAll();
  await sleep(300);
  const rss0 = rssKiB(pid);
  const fds0 = openFiles(pid);
  let held = 0;
  for (const step of p.steps) {
    const r = base(`${step} tunnels`, { tunnels: step });
    r.errors.push(...warmErrors.splice(0));
    try {
      const t0 = performance.now();
      const opened = await openAll(s, step - held, 50, r.errors);
      const openMs = performance.now() - t0;
      held = opened.reduce((a, o) => a + o.total, 0);
      await sleep(p.settleMs);
      const w = await measure(s, p.windowMs, 0, 'messages');
      windowErrors(w, r.errors, null);
      const rss = rssKiB(pid);
      Object.assign(r.metrics, {
        tunnels: held,
        rssKiB: rss,
        rssPerTunnelKiB: (rss - rss0) / held,
        idleCpuPct: w.proxyCpuUsPerSec / 1e4,
        openFiles: openFiles(pid),
        openFilesPerTunnel: (openFiles(pid) - fds0) / held,
        opensPerSec: (opened.reduce((a, o) => a + o.opened, 0) / openMs) * 1000,
      });
      if (held < step) r.errors.push(`only ${held} of ${step} tunnels are open`);
      const crash = s.target.crashed();
      if (crash) r.errors.push(crash);
    } catch (e) {
      r.errors.push((e as Error).message.split('\n').slice(0, 6).join(' | '));
      records.push(r);
      return;
    }
    records.push(r);
    if (r.errors.length > 0) return;
  }
}
