/**
 * What `worker_rlimit_nofile`, `worker_cpu_affinity` and `env` do to a running process. Node.js
 * has neither setrlimit(2) nor sched_setaffinity(2), so the util-linux tools that make those calls
 * for another process do it for this one: `prlimit --pid` and `taskset -p` (every thread with
 * `-a`; threads started later inherit the main thread's CPUs). Where they are missing or the call
 * is refused, the error says so in nginx's words and the process runs on, as nginx's does.
 */
import { execFileSync } from 'node:child_process';
import type { ProcessSettings } from '../config/types.js';

/** The environment variable that tells a worker its number (for worker_cpu_affinity). */
export const WORKER_INDEX_ENV = 'SLUICE_WORKER_INDEX';

function run(tool: string, args: readonly string[]): string | null {
  try {
    execFileSync(tool, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5_000 });
    return null;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') return `"${tool}" is not installed (util-linux)`;
    const text = err.stderr?.toString().trim() ?? err.message;
    if (/not permitted/i.test(text)) return '1: Operation not permitted';
    if (/invalid argument/i.test(text)) return '22: Invalid argument';
    return text.split('\n').at(-1) ?? text;
  }
}

/** `worker_rlimit_nofile N`: soft and hard limit N, as nginx sets both. Null, or nginx's alert. */
export function setOpenFileLimit(n: number, pid = process.pid): string | null {
  const why = run('prlimit', ['--pid', String(pid), `--nofile=${n}:${n}`]);
  return why === null ? null : `setrlimit(RLIMIT_NOFILE, ${n}) failed (${why})`;
}

/** The CPUs of worker number `index` (ngx_get_cpu_affinity), or null when none are set. */
export function cpusOfWorker(affinity: ProcessSettings['cpuAffinity'], index: number): readonly number[] | null {
  if (affinity === null || affinity.sets.length === 0) return null;
  if (affinity.auto) {
    // auto: one CPU each, the index-th CPU of the mask, wrapping around it.
    const all = affinity.sets[affinity.sets.length - 1]!;
    return all.length === 0 ? null : [all[index % all.length]!];
  }
  return affinity.sets[Math.min(index, affinity.sets.length - 1)]!;
}

/** Binds every thread of `pid` to `cpus`. Null, or nginx's alert. */
export function setCpuAffinity(cpus: readonly number[], pid = process.pid): string | null {
  if (cpus.length === 0) return 'sched_setaffinity() failed (22: Invalid argument)';
  const why = run('taskset', ['-a', '-p', '-c', cpus.join(','), String(pid)]);
  return why === null ? null : `sched_setaffinity() failed (${why})`;
}

/** `env NAME=VALUE` lines set the variable in this process (a bare `env NAME` keeps what it has). */
export function applyEnv(env: ProcessSettings['env']): void {
  for (const e of env) if (e.value !== null) process.env[e.name] = e.value;
}

/**
 * Applies the process settings of a configuration to this process as worker number `index`;
 * returns the alerts. `previous` skips what did not change (a reload).
 */
export function applyProcessSettings(p: ProcessSettings, index: number, previous: ProcessSettings | null = null): string[] {
  const alerts: string[] = [];
  applyEnv(p.env);
  if (p.rlimitNofile !== null && p.rlimitNofile !== previous?.rlimitNofile) {
    const failed = setOpenFileLimit(p.rlimitNofile);
    if (failed !== null) alerts.push(failed);
  }
  const cpus = cpusOfWorker(p.cpuAffinity, index);
  const before = previous === null ? null : cpusOfWorker(previous.cpuAffinity, index);
  if (cpus !== null && cpus.join(',') !== before?.join(',')) {
    const failed = setCpuAffinity(cpus);
    if (failed !== null) alerts.push(failed);
  }
  return alerts;
}
