/**
 * `npm run bench [-- OPTIONS]`: runs the benchmark and writes bench/results/RUN.jsonl (one line
 * per cell) and RUN.md (the tables), printing the Markdown at the end. See docs/benchmarks.md.
 */
import { appendFileSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCENARIOS, planFor } from './plan.js';
import type { Mode, Plan, ScenarioName } from './plan.js';
import { installCleanupHooks, killAll } from './processes.js';
import { fmt, renderMarkdown } from './report.js';
import type { EnvRecord, RunRecord } from './report.js';
import { cellsOf, runCell, targetsFor } from './scenarios.js';
import type { CellRecord } from './scenarios.js';
import { NEEDS, NOT_AVAILABLE, TARGET_NAMES } from './targets.js';
import type { TargetName } from './targets.js';
import { ensureTools, environment } from './tools.js';
import type { ToolName } from './tools.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const USAGE = `usage: npm run bench -- [--quick | --smoke] [--reps N] [--targets a,b] [--scenarios a,b] [--out DIR]
  (default)     full run: every scenario and target, 3 repetitions (estimated 30 minutes)
  --quick       every scenario with fewer cells and short windows, 1 repetition (under 4 minutes)
  --smoke       sluice and nginx only, tiny sizes (about a minute; what CI runs)
  --reps N      repetitions per cell
  --targets     subset of ${TARGET_NAMES.join(',')}
  --scenarios   subset of ${SCENARIOS.join(',')}
  --handshake-warmup MS
                the handshakes scenario's warm-up before its window (the plan's: 1000 ms full,
                400 quick); longer lets each process's JIT settle (docs/benchmarks.md)
  --out DIR     where results go (default bench/results)
Exit status: 0 when every cell produced its numbers, 1 when any cell had errors, 2 when it could not run.
`;

interface Args {
  mode: Mode;
  reps: number | null;
  targets: TargetName[] | null;
  scenarios: ScenarioName[] | null;
  handshakeWarmupMs: number | null;
  out: string;
}

function parse(argv: readonly string[]): Args {
  const a: Args = { mode: 'full', reps: null, targets: null, scenarios: null, handshakeWarmupMs: null, out: join(REPO_ROOT, 'bench', 'results') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--quick':
        a.mode = 'quick';
        break;
      case '--smoke':
        a.mode = 'smoke';
        break;
      case '--full':
        a.mode = 'full';
        break;
      case '--reps':
        a.reps = Number(value());
        if (!Number.isInteger(a.reps) || a.reps < 1) throw new Error('--reps needs a positive integer');
        break;
      case '--targets': {
        const list = value().split(',').filter(Boolean);
        for (const t of list) if (!(TARGET_NAMES as readonly string[]).includes(t)) throw new Error(`unknown target "${t}"`);
        a.targets = list as TargetName[];
        break;
      }
      case '--scenarios': {
        const list = value().split(',').filter(Boolean);
        for (const s of list) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario "${s}"`);
        a.scenarios = list as ScenarioName[];
        break;
      }
      case '--handshake-warmup':
        a.handshakeWarmupMs = Number(value());
        if (!Number.isInteger(a.handshakeWarmupMs) || a.handshakeWarmupMs < 0) throw new Error('--handshake-warmup needs a whole number of milliseconds');
        break;
      case '--out':
        a.out = resolve(value());
        break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option "${arg}"`);
    }
  }
  return a;
}

function bufferutilKind(): string {
  try {
    const bu = createRequire(import.meta.url)('bufferutil') as { mask: { toString(): string } };
    return bu.mask.toString().includes('[native code]') ? 'native' : 'js fallback';
  } catch {
    return 'missing';
  }
}

function progress(r: CellRecord, seconds: number): string {
  const m = r.metrics;
  const pick = (['rssPerTunnelKiB', 'handshakesPerSec', 'msgsPerSec', 'MBps', 'cpuUsPerMsg', 'cpuUsPerHandshake', 'addedP99Ms', 'p99Ms', 'requestsPerSec', 'cpuUsPerRequest', 'idleCpuPct'] as const)
    .filter((k) => m[k] !== undefined)
    .slice(0, 3)
    .map((k) => `${k}=${fmt(m[k]!)}`)
    .join(' ');
  return `bench: ${r.scenario} / ${r.cell} / ${r.target} rep ${r.rep + 1}: ${pick || 'no numbers'}${r.errors.length ? ` ERRORS: ${r.errors.join('; ')}` : ''} (${seconds.toFixed(1)} s)`;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  installCleanupHooks();
  const base = planFor(args.mode);
  const notes: string[] = [];
  let targets = [...(args.targets ?? base.targets)];
  for (const t of targets) if (NOT_AVAILABLE[t]) notes.push(`${t}: ${NOT_AVAILABLE[t]}`);
  targets = targets.filter((t) => !NOT_AVAILABLE[t]);
  let scenarios = [...(args.scenarios ?? base.scenarios)];

  const needed = new Set<ToolName>();
  for (const t of targets) if (NEEDS[t]) needed.add(NEEDS[t]);
  if (scenarios.includes('http') || scenarios.includes('cache')) needed.add('wrk');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const tools = ensureTools([...needed], log);
  const fatal: string[] = [];
  for (const t of [...targets]) {
    const tool = NEEDS[t];
    if (tool && !tools[tool].bin) {
      const why = `${t} cannot run: ${tools[tool].note}`;
      if (args.mode === 'smoke') fatal.push(why);
      else notes.push(`${why}; left out of this run`);
      targets = targets.filter((x) => x !== t);
    }
  }
  if (needed.has('wrk') && !tools.wrk.bin) {
    const why = `scenarios http and cache cannot run: ${tools.wrk.note}`;
    if (args.mode === 'smoke') fatal.push(why);
    else notes.push(`${why}; left out of this run`);
    scenarios = scenarios.filter((s) => s !== 'http' && s !== 'cache');
  }
  if (fatal.length > 0) {
    process.stderr.write(`bench: the smoke run needs nginx and wrk:\n${fatal.map((f) => `  ${f}`).join('\n')}\n`);
    return 2;
  }
  if (!targets.includes('sluice')) notes.push('sluice is not among the targets: no ratios');
  // Named targets run in every scenario they can.
  const handshakes = args.handshakeWarmupMs === null ? base.handshakes : { ...base.handshakes, warmupMs: args.handshakeWarmupMs };
  if (args.handshakeWarmupMs !== null) notes.push(`handshakes: ${args.handshakeWarmupMs} ms of warm-up before each window (the ${base.mode} plan's: ${base.handshakes.warmupMs})`);
  const plan: Plan = { ...base, reps: args.reps ?? base.reps, targets, scenarios, handshakes, handshakesOnly: args.targets === null ? base.handshakesOnly : undefined };
  const bufferutil = bufferutilKind();
  if (bufferutil !== 'native') notes.push(`the echo backend runs without native bufferutil (${bufferutil}): backend CPU is higher than it should be`);

  const run = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19) + `-${plan.mode}`;
  mkdirSync(args.out, { recursive: true });
  const jsonl = join(args.out, `${run}.jsonl`);
  const md = join(args.out, `${run}.md`);
  const env: EnvRecord = { type: 'env', run, ...environment(tools, REPO_ROOT, bufferutil) };
  const runRecord = (extra: Partial<RunRecord> = {}): RunRecord => ({
    type: 'run',
    run,
    mode: plan.mode,
    reps: plan.reps,
    targets: plan.targets,
    scenarios: plan.scenarios,
    notes,
    ...extra,
  });
  writeFileSync(jsonl, `${JSON.stringify(env)}\n${JSON.stringify(runRecord())}\n`);
  log(`bench: ${plan.mode} run ${run}: targets ${plan.targets.join(', ')}; scenarios ${plan.scenarios.join(', ')}; ${plan.reps} repetition(s)`);
  for (const n of notes) log(`bench: note: ${n}`);

  const started = performance.now();
  const cells: CellRecord[] = [];
  for (const spec of cellsOf(plan)) {
    for (let rep = 0; rep < plan.reps; rep++) {
      for (const target of targetsFor(spec.scenario, plan.targets, plan.handshakesOnly)) {
        const t0 = performance.now();
        const recs = await runCell({ run, plan, tools }, spec, target, rep);
        for (const r of recs) {
          cells.push(r);
          appendFileSync(jsonl, `${JSON.stringify(r)}\n`);
          log(progress(r, (performance.now() - t0) / 1000));
        }
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const final = runRecord({ seconds, loadAvgEnd: loadavg().map((x) => Math.round(x * 100) / 100) });
  appendFileSync(jsonl, `${JSON.stringify(final)}\n`);
  const text = renderMarkdown(env, final, cells);
  writeFileSync(md, text + '\n');
  // The committed reference (latest-full.*) is a whole run on the plan: one with fewer targets,
  // scenarios or repetitions, or another warm-up, goes to latest-MODE-partial.* so that an
  // experiment never overwrites it.
  const whole = args.targets === null && args.scenarios === null && args.reps === null && args.handshakeWarmupMs === null;
  const latest = `latest-${plan.mode}${whole ? '' : '-partial'}`;
  copyFileSync(jsonl, join(args.out, `${latest}.jsonl`));
  copyFileSync(md, join(args.out, `${latest}.md`));
  process.stdout.write(`${text}\n`);
  log(`bench: done in ${seconds.toFixed(0)} s; results in ${jsonl} and ${md}`);
  const failed = cells.filter((c) => c.errors.length > 0).length;
  if (failed > 0) log(`bench: ${failed} cell(s) had errors (listed under "Errors" in the report)`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => {
    killAll();
    process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    killAll();
    process.exit(2);
  },
);
