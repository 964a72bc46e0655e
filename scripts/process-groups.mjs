// The runner's side of test/helpers/process-groups.ts: after a pass, the process groups its tests
// wrote down and left alive (a test file cut off by a timeout never runs its own kills) are
// killed, so they cannot hold ports and CPU for the rest of the run and beyond it.
import { existsSync, readdirSync, rmSync } from 'node:fs';

/** Kills every group named in `dir` that is still alive, removes `dir`, and returns how many it killed. */
export function killLeftGroups(dir) {
  let killed = 0;
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    try {
      process.kill(-Number(name), 'SIGKILL');
      killed++;
    } catch {
      // Gone already, as it should be.
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return killed;
}
