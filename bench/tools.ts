/**
 * The peers and wrk: find them, install the missing ones with apt-get when running as root
 * (`apt-get update` once first, services kept from starting), and describe the environment for
 * the report's header.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

export type ToolName = 'nginx' | 'haproxy' | 'wrk' | 'redis-server';

/** The Debian package that brings each tool. */
const PACKAGES: Record<ToolName, string> = { nginx: 'nginx-light', haproxy: 'haproxy', wrk: 'wrk', 'redis-server': 'redis-server' };

const SEARCH_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin'];

/** The absolute path of an executable named `name`, from PATH and the usual sbin folders. */
export function which(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH_DIRS];
  for (const d of dirs) {
    const p = `${d}/${name}`;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

function run(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}

export function toolVersion(name: ToolName, bin: string): string {
  switch (name) {
    case 'nginx':
      return /nginx\/(\S+)/.exec(run(bin, ['-v']))?.[1] ?? 'unknown';
    case 'haproxy':
      return /version (\S+)/.exec(run(bin, ['-v']))?.[1] ?? 'unknown';
    case 'wrk':
      return /^wrk (\S+)/m.exec(run(bin, ['--version']))?.[1] ?? 'unknown';
    case 'redis-server':
      return /v=(\S+)/.exec(run(bin, ['--version']))?.[1] ?? 'unknown';
  }
}

export interface ToolStatus {
  readonly bin: string | null;
  readonly version: string | null;
  /** Why it is missing, when it is. */
  readonly note: string | null;
}

const POLICY_RC = '/usr/sbin/policy-rc.d';

/** apt-get install with services kept from starting (Debian's nginx would start on port 80). */
function aptInstall(packages: readonly string[], log: (line: string) => void): string | null {
  if (!which('apt-get')) return 'apt-get is not available';
  const ourPolicy = !existsSync(POLICY_RC);
  try {
    if (ourPolicy) {
      writeFileSync(POLICY_RC, '#!/bin/sh\n# written by the Sluice benchmark during apt-get install: start no services\nexit 101\n');
      chmodSync(POLICY_RC, 0o755);
    }
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    log(`bench: installing ${packages.join(' ')} with apt-get (apt-get update first)`);
    const up = spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', env, timeout: 300_000 });
    if (up.status !== 0) return `apt-get update failed: ${(up.stderr || up.stdout || '').trim().split('\n').slice(-3).join(' / ')}`;
    const inst = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { encoding: 'utf8', env, timeout: 600_000 });
    if (inst.status !== 0) return `apt-get install ${packages.join(' ')} failed: ${(inst.stderr || inst.stdout || '').trim().split('\n').slice(-3).join(' / ')}`;
    return null;
  } finally {
    if (ourPolicy) rmSync(POLICY_RC, { force: true });
  }
}

/**
 * Finds each tool; installs the missing ones through apt-get when running as root. A tool that is
 * still missing afterwards comes back with `bin: null` and a note saying why.
 */
export function ensureTools(names: readonly ToolName[], log: (line: string) => void): Record<ToolName, ToolStatus> {
  const missing = names.filter((n) => which(n) === null);
  let why: string | null = null;
  if (missing.length > 0) {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!isRoot) why = `not installed, and the harness is not root so it cannot apt-get install ${missing.map((n) => PACKAGES[n]).join(' ')}`;
    else why = aptInstall(missing.map((n) => PACKAGES[n]), log);
  }
  const out = {} as Record<ToolName, ToolStatus>;
  for (const n of names) {
    const bin = which(n);
    out[n] = bin
      ? { bin, version: toolVersion(n, bin), note: null }
      : { bin: null, version: null, note: `${n}: ${why ?? 'not found after installing'} (Debian package ${PACKAGES[n]})` };
  }
  return out;
}

export interface Environment {
  readonly date: string;
  readonly node: string;
  readonly nginx: string | null;
  readonly haproxy: string | null;
  readonly wrk: string | null;
  readonly nproc: number;
  readonly cpu: string;
  readonly memGiB: number;
  readonly kernel: string;
  readonly openFileLimit: string;
  readonly loadAvg: readonly number[];
  readonly commit: string;
  readonly bufferutil: string;
}

function openFileLimit(): string {
  const r = spawnSync('sh', ['-c', 'echo "$(ulimit -Sn)/$(ulimit -Hn)"'], { encoding: 'utf8' });
  return r.stdout.trim() || 'unknown';
}

function gitCommit(cwd: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head} (src modified)` : head;
  } catch {
    return 'unknown';
  }
}

export function environment(tools: Partial<Record<ToolName, ToolStatus>>, repoDir: string, bufferutil: string): Environment {
  return {
    date: new Date().toISOString(),
    node: process.version,
    nginx: tools.nginx?.version ?? null,
    haproxy: tools.haproxy?.version ?? null,
    wrk: tools.wrk?.version ?? null,
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    openFileLimit: openFileLimit(),
    loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
    commit: gitCommit(repoDir),
    bufferutil,
  };
}
