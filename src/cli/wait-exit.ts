/**
 * `sluice -s quit --wait` (and `-s stop --wait`): the signal is sent, then the command returns
 * only once the instance has exited, for scripts that must not go on while the old instance still
 * holds its ports. There is no handle on another process's exit but polling: kill(pid, 0) says
 * whether the pid is still there (EPERM: it is, but belongs to another user).
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Between two looks: short next to a graceful stop, long next to a system call. */
const POLL_MS = 100;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves true once `pid` is gone, false if it is still there after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}
