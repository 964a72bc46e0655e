/**
 * What the harness reads about a measured process from procfs: CPU time (utime + stime, plus
 * cutime + cstime of reaped children) summed over the process and its live descendants (nginx's
 * master and worker), resident memory (VmRSS, and the peak VmHWM), and open descriptors.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let clkTck = 0;

/** Clock ticks per second for /proc/PID/stat times (`getconf CLK_TCK`, usually 100). */
export function clockTicks(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

function statFields(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name is in parentheses and may contain spaces: split after the last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** The pid and every live descendant of it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const f = statFields(pid);
    if (!f) continue;
    const ppid = Number(f[1]);
    let list = children.get(ppid);
    if (!list) children.set(ppid, (list = []));
    list.push(pid);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

/** CPU time of the tree in microseconds; NaN when the process is gone. */
export function cpuMicros(root: number): number {
  if (!statFields(root)) return NaN;
  let ticks = 0;
  for (const pid of processTree(root)) {
    const f = statFields(pid);
    if (!f) continue;
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return (ticks * 1e6) / clockTicks();
}

function statusKiB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of the tree, KiB. */
export function rssKiB(root: number): number {
  let kib = 0;
  for (const pid of processTree(root)) kib += statusKiB(pid, 'VmRSS');
  return kib;
}

/** Peak resident memory (VmHWM) summed over the tree, KiB. */
export function peakRssKiB(root: number): number {
  let kib = 0;
  for (const pid of processTree(root)) kib += statusKiB(pid, 'VmHWM');
  return kib;
}

/** Open file descriptors of the tree. */
export function openFiles(root: number): number {
  let n = 0;
  for (const pid of processTree(root)) {
    try {
      n += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // gone
    }
  }
  return n;
}

/** One reading of a process tree, for windows. */
export interface ProcSample {
  readonly at: number;
  readonly cpuUs: number;
}

export function sample(root: number): ProcSample {
  return { at: performance.now(), cpuUs: cpuMicros(root) };
}
