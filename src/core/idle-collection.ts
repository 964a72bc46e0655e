/**
 * A full garbage collection once a burst of handshakes is over, where the process allows it (the
 * `sluice` command does, cli/memory-settings.ts; a library user's process is its own). With
 * the young generation kept small, a burst promotes the handshakes' short-lived objects to the
 * old generation, where they stay until the next full collection, which in an idle proxy may
 * not come for a long time: 3-5 KiB per tunnel opened in the burst (docs/benchmarks.md, "Idle
 * memory"). The native tunnels call it, with the C heap's trim, once hand-overs stop.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null = null;

/**
 * Lets {@link collectAfterBurst} run full collections in this process. V8 has no API for one;
 * `--expose-gc` set now gives `gc` to new contexts only, so it is taken from a fresh one and the
 * flag is put back, leaving the process's own global as it was.
 */
export function allowIdleCollection(): void {
  if (collect !== null) return;
  const own = (globalThis as { gc?: () => void }).gc;
  if (typeof own === 'function') {
    collect = own;
    return;
  }
  setFlagsFromString('--expose-gc');
  try {
    collect = runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** A full collection, where allowed; a no-op otherwise. */
export function collectAfterBurst(): void {
  collect?.();
}
