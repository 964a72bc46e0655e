/** What the tests read of a process's threads in /proc/PID/task. */
import { readFileSync, readdirSync } from 'node:fs';

/**
 * Each thread of process `pid` ('self': this one): its name and the fields of its stat line from
 * field 3 (state) on, after the command's closing parenthesis. A thread that ended between the
 * listing and its read is left out.
 */
function threads(pid: string): { comm: string; fields: string[] }[] {
  const out: { comm: string; fields: string[] }[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let comm: string;
    let stat: string;
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim();
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    } catch {
      continue; // the thread ended meanwhile
    }
    out.push({ comm, fields: stat.slice(stat.lastIndexOf(')') + 2).split(' ') });
  }
  return out;
}

/** The scheduling policy (SCHED_OTHER 0, SCHED_BATCH 3, ...) of each of this process's threads named `name`. */
export function threadPolicies(name: string): number[] {
  // Policy is field 41.
  return threads('self').filter((t) => t.comm === name).map((t) => Number(t.fields[41 - 3]));
}

/** Whether every thread of process `pid` is stopped (SIGSTOP): state T. */
export function allThreadsStopped(pid: string): boolean {
  const all = threads(pid);
  return all.length > 0 && all.every((t) => t.fields[0] === 'T');
}
