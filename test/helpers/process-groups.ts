/**
 * The process groups tests start (a `sluice` primary with its workers, nginx), written down where
 * scripts/test.mjs finds them: a test file that the runner cuts off (a timeout under load) never
 * runs its `t.after` kills, and its groups would outlive the run, still holding ports and CPU.
 * The runner kills whatever of them is still alive after each pass.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The directory the runner gives each pass (one empty file per group, named by its id). */
export const GROUPS_ENV = 'SLUICE_TEST_GROUPS';

/** Notes a child started with `detached: true` (the leader of its own group). */
export function trackGroup(child: ChildProcess): void {
  const dir = process.env[GROUPS_ENV];
  if (!dir || child.pid === undefined) return;
  writeFileSync(join(dir, String(child.pid)), '');
}
