/**
 * Turns a results file (JSON lines: one `env`, one `run`, then one `cell` per target, setting and
 * repetition) into the Markdown report: the environment, the issue's targets with this run's
 * ratios, and per scenario each target's figure with the ratios sluice/nginx and sluice/haproxy
 * (median and min-max over repetitions). Also a command: `node dist/bench/report.js FILE.jsonl`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ScenarioName } from './plan.js';
import type { CellRecord } from './scenarios.js';
import type { TargetName } from './targets.js';
import type { Environment } from './tools.js';

export interface RunRecord {
  readonly type: 'run';
  readonly run: string;
  readonly mode: string;
  readonly reps: number;
  readonly targets: readonly string[];
  readonly scenarios: readonly string[];
  readonly notes: readonly string[];
  readonly seconds?: number;
  readonly loadAvgEnd?: readonly number[];
}

export interface EnvRecord extends Environment {
  readonly type: 'env';
  readonly run: string;
}

interface MetricSpec {
  readonly key: string;
  readonly label: string;
  /** Which way is better, for the reader (ratios are always sluice / peer). */
  readonly better: 'higher' | 'lower' | 'info';
}

/** The wrk scenarios' figures (plain and cached HTTP). */
const WRK_METRICS: readonly MetricSpec[] = [
  { key: 'requestsPerSec', label: 'requests/s', better: 'higher' },
  { key: 'cpuUsPerRequest', label: 'proxy CPU µs per request', better: 'lower' },
];

export const SCENARIO_INFO: Record<ScenarioName, { readonly title: string; readonly what: string; readonly metrics: readonly MetricSpec[] }> = {
  idle: {
    title: '1. Idle tunnels',
    what: 'WebSocket tunnels opened and held idle; proxy RSS growth per tunnel over the baseline, and CPU while idle.',
    metrics: [
      { key: 'rssPerTunnelKiB', label: 'KiB RSS per tunnel', better: 'lower' },
      { key: 'idleCpuPct', label: 'idle CPU, % of a core', better: 'lower' },
      { key: 'openFilesPerTunnel', label: 'descriptors per tunnel', better: 'info' },
    ],
  },
  handshakes: {
    title: '2. Handshakes',
    what: 'Each opener loops: connect, WebSocket handshake, close frame, close. Handshakes per second and proxy CPU per handshake.',
    metrics: [
      { key: 'handshakesPerSec', label: 'handshakes/s', better: 'higher' },
      { key: 'cpuUsPerHandshake', label: 'proxy CPU µs per handshake', better: 'lower' },
      { key: 'p99Ms', label: 'handshake p99 ms', better: 'lower' },
    ],
  },
  small: {
    title: '3. Small messages',
    what: 'Closed loop: each connection keeps a few binary messages in flight and sends one per echo. Echoed messages per second and proxy CPU per echoed message (one frame each way).',
    metrics: [
      { key: 'msgsPerSec', label: 'msgs/s', better: 'higher' },
      { key: 'cpuUsPerMsg', label: 'proxy CPU µs per msg', better: 'lower' },
    ],
  },
  large: {
    title: '4. Large messages',
    what: 'Closed loop, one message in flight per connection. Echoed payload MB/s (10^6 bytes, one direction), proxy CPU per echoed message, peak proxy RSS (VmHWM).',
    metrics: [
      { key: 'MBps', label: 'MB/s echoed', better: 'higher' },
      { key: 'cpuUsPerMsg', label: 'proxy CPU µs per msg', better: 'lower' },
      { key: 'peakRssMiB', label: 'peak RSS MiB', better: 'lower' },
    ],
  },
  latency: {
    title: '5. Added latency',
    what: 'Open loop at a fixed rate, latency from the scheduled send time (queueing counts). Round trip minus the same repetition\'s direct figure.',
    metrics: [
      { key: 'addedP50Ms', label: 'added p50 ms', better: 'lower' },
      { key: 'addedP99Ms', label: 'added p99 ms', better: 'lower' },
      { key: 'addedP999Ms', label: 'added p99.9 ms', better: 'lower' },
      { key: 'p50Ms', label: 'p50 ms (round trip)', better: 'info' },
      { key: 'p99Ms', label: 'p99 ms (round trip)', better: 'info' },
      { key: 'p999Ms', label: 'p99.9 ms (round trip)', better: 'info' },
    ],
  },
  guardrails: {
    title: '7. WebSocket guardrails',
    what: 'Scenario 3\'s closed loop (64 B, 50 connections) with each guardrail on and never broken, Sluice only: `sluice` relays in the native addon, `sluice-ts-tunnel` in TypeScript (SLUICE_NATIVE=off). The added CPU is the cell\'s figure minus the same target\'s `none` cell in the same repetition.',
    metrics: [
      { key: 'msgsPerSec', label: 'msgs/s', better: 'higher' },
      { key: 'cpuUsPerMsg', label: 'proxy CPU µs per msg', better: 'lower' },
      { key: 'addedUsPerMsg', label: 'added µs per msg (vs none)', better: 'lower' },
    ],
  },
  http: {
    title: '6. Plain HTTP (wrk)',
    what: 'wrk, one thread, keep-alive, GET of a fixed body; the proxies reuse upstream connections. Requests per second and proxy CPU per request.',
    metrics: WRK_METRICS,
  },
  cache: {
    title: '8. Cached HTTP responses (wrk)',
    what: 'wrk, one thread, keep-alive, GET of a 16 KB body every request of which each proxy answers from its own cache (nginx and Sluice proxy_cache, HAProxy\'s cache; checked to be a hit before the window). Requests per second and proxy CPU per cached response.',
    metrics: WRK_METRICS,
  },
};

const TARGET_ORDER: readonly string[] = [
  'direct', 'sluice', 'sluice-io-other', 'sluice-ref', 'sluice-ts-tunnel', 'sluice-node-front', 'sluice-v8-default', 'sluice-v8-small', 'sluice-jit-default', 'sluice-workers', 'sluice-workers-jit-default', 'sluice-workers-rr', 'sluice-reuseport', 'sluice-least-conn', 'sluice-fleet',
  'sluice-c-handshake', 'sluice-c-handshake-c-route',
  'sluice-undici', 'sluice-node-client',
  'nginx', 'nginx-tuned', 'haproxy', 'http-proxy',
];

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(2);
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** "median (min–max)" over repetitions, or just the value when there is one. */
export function summary(xs: readonly number[], digits: (v: number) => string = fmt): string {
  const ok = xs.filter(Number.isFinite);
  if (ok.length === 0) return '–';
  const med = digits(median(ok));
  if (ok.length === 1) return med;
  return `${med} (${digits(Math.min(...ok))}–${digits(Math.max(...ok))})`;
}

const ratioFmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');

/** The guardrails scenario's cell "VARIANT, SETTING": the setting, shared with the `none` cell it is compared with. */
const guardrailSetting = (cell: string): string => cell.slice(cell.indexOf(', ') + 2);

/**
 * Adds the latency scenario's "minus direct" figures, pairing records by cell and repetition, and
 * the guardrails scenario's "minus none", pairing them by target, setting and repetition.
 */
export function withDerived(cells: readonly CellRecord[]): CellRecord[] {
  const direct = new Map<string, CellRecord>();
  const none = new Map<string, CellRecord>();
  for (const c of cells) {
    if (c.scenario === 'latency' && c.target === 'direct') direct.set(`${c.cell}#${c.rep}`, c);
    if (c.scenario === 'guardrails' && c.cell.startsWith('none, ')) none.set(`${c.target}#${guardrailSetting(c.cell)}#${c.rep}`, c);
  }
  return cells.map((c) => {
    if (c.scenario === 'guardrails') {
      const base = none.get(`${c.target}#${guardrailSetting(c.cell)}#${c.rep}`)?.metrics.cpuUsPerMsg;
      const mine = c.metrics.cpuUsPerMsg;
      return base === undefined || mine === undefined ? c : { ...c, metrics: { ...c.metrics, addedUsPerMsg: mine - base } };
    }
    if (c.scenario !== 'latency') return c;
    const d = direct.get(`${c.cell}#${c.rep}`);
    if (!d) return c;
    const m = { ...c.metrics };
    for (const [k, src] of [['addedP50Ms', 'p50Ms'], ['addedP99Ms', 'p99Ms'], ['addedP999Ms', 'p999Ms']] as const) {
      if (Number.isFinite(c.metrics[src]) && Number.isFinite(d.metrics[src])) m[k] = c.metrics[src]! - d.metrics[src]!;
    }
    return { ...c, metrics: m };
  });
}

type Index = Map<string, Map<string, CellRecord[]>>; // cell -> target -> records by rep

function indexOf(cells: readonly CellRecord[], scenario: ScenarioName): { index: Index; order: string[] } {
  const index: Index = new Map();
  const order: string[] = [];
  for (const c of cells) {
    if (c.scenario !== scenario) continue;
    let byTarget = index.get(c.cell);
    if (!byTarget) {
      index.set(c.cell, (byTarget = new Map()));
      order.push(c.cell);
    }
    let list = byTarget.get(c.target);
    if (!list) byTarget.set(c.target, (list = []));
    list.push(c);
  }
  return { index, order };
}

function values(recs: readonly CellRecord[] | undefined, key: string): number[] {
  return (recs ?? []).map((r) => r.metrics[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

/** sluice/peer per repetition (paired by rep), for ratios' median and range. */
function ratios(byTarget: Map<string, CellRecord[]>, peer: string, key: string, subject = 'sluice'): number[] {
  const s = byTarget.get(subject) ?? [];
  const p = byTarget.get(peer) ?? [];
  const out: number[] = [];
  for (const a of s) {
    const b = p.find((x) => x.rep === a.rep);
    const va = a.metrics[key];
    const vb = b?.metrics[key];
    if (va === undefined || vb === undefined || !Number.isFinite(va) || !Number.isFinite(vb) || vb === 0) continue;
    if (key.startsWith('added') && (va <= 0 || vb <= 0)) continue;
    out.push(va / vb);
  }
  return out;
}

interface TargetCheck {
  readonly goal: string;
  readonly scenario: ScenarioName;
  readonly key: string;
  readonly peer: TargetName;
  readonly cells: (cell: CellRecord) => boolean;
  /** Met when the median ratio sluice/peer is at most (lower) or at least (higher) this. */
  readonly bound: number;
  /** max: ratio ≤ bound; min: ratio ≥ bound; above: ratio > bound. */
  readonly dir: 'max' | 'min' | 'above';
  /** The target measured against the peer (sluice unless said). */
  readonly subject?: TargetName;
}

const TARGET_CHECKS: readonly TargetCheck[] = [
  { goal: 'proxy CPU per 64 B message ≤ nginx', scenario: 'small', key: 'cpuUsPerMsg', peer: 'nginx', cells: (c) => c.params.size === 64, bound: 1, dir: 'max' },
  { goal: 'RSS per idle tunnel ≤ HAProxy', scenario: 'idle', key: 'rssPerTunnelKiB', peer: 'haproxy', cells: () => true, bound: 1, dir: 'max' },
  { goal: '64 KB message throughput ≥ HAProxy', scenario: 'large', key: 'MBps', peer: 'haproxy', cells: (c) => c.params.size === 65536, bound: 1, dir: 'min' },
  { goal: 'handshakes per second ≥ nginx', scenario: 'handshakes', key: 'handshakesPerSec', peer: 'nginx', cells: () => true, bound: 1, dir: 'min' },
  { goal: 'plain HTTP requests/s ≥ 0.8 × nginx', scenario: 'http', key: 'requestsPerSec', peer: 'nginx', cells: () => true, bound: 0.8, dir: 'min' },
];

/** Issue 15's targets: CPU per handshake and per request against nginx, idle RSS at two steps, one message in flight. */
const TARGET_CHECKS_15: readonly TargetCheck[] = [
  { goal: 'proxy CPU per handshake ≤ nginx', scenario: 'handshakes', key: 'cpuUsPerHandshake', peer: 'nginx', cells: () => true, bound: 1, dir: 'max' },
  { goal: 'proxy CPU per plain HTTP request ≤ 1.25 × nginx', scenario: 'http', key: 'cpuUsPerRequest', peer: 'nginx', cells: () => true, bound: 1.25, dir: 'max' },
  { goal: 'plain HTTP requests/s ≥ 0.8 × nginx', scenario: 'http', key: 'requestsPerSec', peer: 'nginx', cells: () => true, bound: 0.8, dir: 'min' },
  { goal: 'RSS per idle tunnel ≤ HAProxy at 3,000 and 9,000', scenario: 'idle', key: 'rssPerTunnelKiB', peer: 'haproxy', cells: (c) => c.params.tunnels === 3000 || c.params.tunnels === 9000, bound: 1, dir: 'max' },
  { goal: 'proxy CPU per 64 B message ≤ nginx, one in flight', scenario: 'small', key: 'cpuUsPerMsg', peer: 'nginx', cells: (c) => c.params.size === 64 && c.params.depth === 1 && c.params.conns === 50, bound: 1, dir: 'max' },
  { goal: '64 KB message throughput stays ≥ HAProxy', scenario: 'large', key: 'MBps', peer: 'haproxy', cells: (c) => c.params.size === 65536, bound: 1, dir: 'min' },
  { goal: '`worker_processes 2` handshakes/s > one process', scenario: 'handshakes', key: 'handshakesPerSec', peer: 'sluice', subject: 'sluice-workers', cells: () => true, bound: 1, dir: 'above' },
  // The same with `listen ... reuseport`: workers that accept for themselves (a socket each, by
  // Node's reusePort or the addon's); measured in the handshakes scenario of every full run.
  { goal: '`worker_processes 2` with `reuseport` handshakes/s > one process', scenario: 'handshakes', key: 'handshakesPerSec', peer: 'sluice', subject: 'sluice-reuseport', cells: () => true, bound: 1, dir: 'above' },
];

function verdict(t: TargetCheck, m: number): boolean {
  return t.dir === 'max' ? m <= t.bound : t.dir === 'min' ? m >= t.bound : m > t.bound;
}

function targetsTable(cells: readonly CellRecord[], issue: number, checks: readonly TargetCheck[]): string[] {
  const lines = [`| Goal (issue ${issue}) | Cell | subject | peer | subject/peer | Verdict |`, '| --- | --- | --- | --- | --- | --- |'];
  for (const t of checks) {
    const subject = t.subject ?? 'sluice';
    const { index, order } = indexOf(cells, t.scenario);
    let any = false;
    for (const cell of order) {
      const byTarget = index.get(cell)!;
      const sample = byTarget.values().next().value?.[0];
      if (!sample || !t.cells(sample)) continue;
      const r = ratios(byTarget, t.peer, t.key, subject);
      if (r.length === 0) continue;
      any = true;
      const met = verdict(t, median(r));
      lines.push(
        `| ${t.goal} | ${cell} | ${subject} ${summary(values(byTarget.get(subject), t.key))} | ${t.peer} ${summary(values(byTarget.get(t.peer), t.key))} | ${summary(r, ratioFmt)} | ${met ? 'met' : '**missed**'} |`,
      );
    }
    if (!any) lines.push(`| ${t.goal} | – | – | – | – | not measured in this run |`);
  }
  return lines;
}

function scenarioTable(cells: readonly CellRecord[], scenario: ScenarioName): string[] {
  const info = SCENARIO_INFO[scenario];
  const { index, order } = indexOf(cells, scenario);
  if (order.length === 0) return [];
  const present = TARGET_ORDER.filter((t) => order.some((c) => index.get(c)!.has(t)));
  const peers = (['nginx', 'haproxy'] as const).filter((p) => present.includes(p) && present.includes('sluice'));
  const out = [`### ${info.title}`, '', info.what, ''];
  out.push(`| Cell | Metric | ${present.join(' | ')}${peers.map((p) => ` | sluice/${p}`).join('')} |`);
  out.push(`| --- | --- |${present.map(() => ' ---: |').join('')}${peers.map(() => ' ---: |').join('')}`);
  for (const cell of order) {
    const byTarget = index.get(cell)!;
    for (const m of info.metrics) {
      const row = present.map((t) => summary(values(byTarget.get(t), m.key)));
      if (row.every((v) => v === '–')) continue;
      const rs = peers.map((p) => summary(ratios(byTarget, p, m.key), ratioFmt));
      const arrow = m.better === 'higher' ? ' ↑' : m.better === 'lower' ? ' ↓' : '';
      out.push(`| ${cell} | ${m.label}${arrow} | ${row.join(' | ')}${rs.map((r) => ` | ${r}`).join('')} |`);
    }
  }
  out.push('');
  return out;
}

export function renderMarkdown(env: EnvRecord, run: RunRecord, rawCells: readonly CellRecord[]): string {
  const cells = withDerived(rawCells);
  const lines: string[] = [];
  lines.push(`## Sluice benchmark: ${run.mode} run, ${env.date.slice(0, 16).replace('T', ' ')} UTC`, '');
  lines.push(
    `- **Machine**: ${env.nproc} CPUs (${env.cpu}), ${env.memGiB} GiB, Linux ${env.kernel}; open-file limit ${env.openFileLimit}; ` +
      `load average ${env.loadAvg.join(' ')} at start${run.loadAvgEnd ? `, ${run.loadAvgEnd.join(' ')} at end` : ''}`,
  );
  lines.push(`- **Versions**: node ${env.node}, nginx ${env.nginx ?? 'missing'}, haproxy ${env.haproxy ?? 'missing'}, wrk ${env.wrk ?? 'missing'}; Sluice commit ${env.commit}; backend bufferutil ${env.bufferutil}`);
  lines.push(`- **Run**: mode \`${run.mode}\`, ${run.reps} repetition(s) per cell, targets interleaved per repetition${run.seconds ? `, took ${Math.round(run.seconds)} s` : ''}`);
  lines.push('- Figures are the median over repetitions with (min–max) when there are several; ratios are sluice/peer per repetition. ↑ higher is better, ↓ lower is better.');
  lines.push('');
  if (run.notes.length > 0) {
    lines.push('Notes:', '', ...run.notes.map((n) => `- ${n}`), '');
  }
  lines.push('### Targets from issue 6', '', ...targetsTable(cells, 6, TARGET_CHECKS), '');
  lines.push('### Targets from issue 15', '', ...targetsTable(cells, 15, TARGET_CHECKS_15), '');
  for (const s of ['idle', 'handshakes', 'small', 'large', 'latency', 'http', 'guardrails', 'cache'] as const) lines.push(...scenarioTable(cells, s));
  const errs = cells.filter((c) => c.errors.length > 0);
  if (errs.length > 0) {
    lines.push('### Errors', '');
    for (const c of errs) lines.push(`- ${c.scenario} / ${c.cell} / ${c.target} / rep ${c.rep + 1}: ${c.errors.join('; ')}`);
    lines.push('');
  }
  const busyDriver = cells.filter((c) => (c.metrics.driverCpuPct ?? 0) > 90);
  if (busyDriver.length > 0) {
    lines.push(
      `Driver CPU above 90 % in ${busyDriver.length} cell(s) (${[...new Set(busyDriver.map((c) => `${c.scenario} / ${c.cell}`))].join(', ')}): ` +
        'there the driver, not only the proxy, limits throughput; per-message CPU figures still hold.',
      '',
    );
  }
  return lines.join('\n');
}

export function readResults(file: string): { env: EnvRecord; run: RunRecord; cells: CellRecord[] } {
  let env: EnvRecord | undefined;
  let run: RunRecord | undefined;
  const cells: CellRecord[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { type: string };
    if (r.type === 'env') env = r as EnvRecord;
    else if (r.type === 'run') run = r as RunRecord;
    else if (r.type === 'cell') cells.push(r as CellRecord);
  }
  if (!env || !run) throw new Error(`${file}: no env or run line`);
  return { env, run, cells };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/report.js RESULTS.jsonl\n');
    process.exitCode = 2;
  } else {
    const { env, run, cells } = readResults(file);
    process.stdout.write(renderMarkdown(env, run, cells) + '\n');
  }
}
