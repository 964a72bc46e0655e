/** What the tests read of this process's threads in /proc/self/task. */
import { readFileSync, readdirSync } from 'node:fs';

/** The scheduling policy (SCHED_OTHER 0, SCHED_BATCH 3, ...) of each of this process's threads named `name`. */
export function threadPolicies(name: string): number[] {
  const out: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    let comm: string;
    let stat: string;
    try {
      comm = readFileSync(`/proc/self/task/${tid}/comm`, 'latin1').trim();
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
    } catch {
      continue; // the thread ended meanwhile
    }
    if (comm !== name) continue;
    // Fields after the command's closing parenthesis start at field 3 (state); policy is field 41.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.push(Number(fields[41 - 3]));
  }
  return out;
}
