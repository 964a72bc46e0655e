/**
 * How the `sluice` command's process holds its memory, set first by cli/main.ts, before any other
 * module allocates: V8's young generation grows under a burst as V8 grows it, and is given back
 * once the process is idle again.
 *
 * Why: V8 grows the new space (doubling, from 1 MiB up to 16 MiB per semi-space on 64-bit) once
 * as many bytes have survived scavenges as it holds, and does not give it back while the process
 * is idle. A burst of WebSocket handshakes does exactly that, so after 3,000 reconnecting clients
 * a proxy kept about 30 MiB of empty nursery: 10 KiB per idle tunnel, more than the tunnels
 * themselves (docs/benchmarks.md, "Idle memory").
 *
 * Keeping the nursery at 1 MiB (`--semi-space-growth-factor=1`, which V8 reads each time it would
 * grow it) cured that but cost the handshakes: every object of a handshake still in flight at two
 * scavenges is copied twice and promoted, 4.5 KB per handshake at 50 concurrent openers and 9 KB
 * at 200, with twelve to sixteen times as many scavenges (docs/benchmarks.md, "Handshake CPU since
 * 31755f6"). So the nursery now grows during a burst, and once the process has used less than
 * IDLE_CPU_SHARE of a core over an IDLE_CHECK_MS window with the nursery grown, the sluice_memory
 * addon (native/memory/sluice_memory.cc) asks V8 for a memory-reducing collection, which
 * shrinks the new space back to its initial size. Its pauses come only when nothing is happening
 * (the last and longest: 18 ms with 3,000 tunnels held, 44 ms with 9,000), and the
 * native relay's tunnels keep flowing through it on their own thread. Where that addon is not
 * built (or does not load: non-Linux, no compiler), the nursery stays at 1 MiB as before.
 *
 * The young generation is left alone when the operator sized it (`--max-semi-space-size`,
 * `--min-semi-space-size`, `--semi-space-growth-factor` in Node's arguments or NODE_OPTIONS).
 * `SLUICE_V8_MEMORY=default` leaves it to V8; `SLUICE_V8_MEMORY=small` keeps it at 1 MiB (the
 * benchmark's `sluice-v8-default` and `sluice-v8-small`). Library users (`startProxy`) own their
 * process and are not touched.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { givenToNode } from './node-options.js';

/** What native/memory/sluice_memory.cc exports. */
interface MemoryAddon {
  reduceMemory(): boolean;
}

/** Where scripts/build-native.mjs puts the addon, from dist/src/cli/. */
const MEMORY_ADDON_PATH = fileURLToPath(new URL('../../../native/memory/build/Release/sluice_memory.node', import.meta.url));
/** How often the process checks whether it is idle with a grown nursery. */
const IDLE_CHECK_MS = 500;
/** Idle: less CPU than this share of one core over the last IDLE_CHECK_MS (5 %: 25 ms). */
const IDLE_CPU_SHARE = 0.05;
/**
 * A new space above this has grown: a memory-reducing collection leaves it at 1 MiB (as V8
 * reports `new_space`'s size). Not the size read at start-up, which V8 may report larger (8 MiB
 * in the sluice process on Node 20) before its first shrink.
 */
const GROWN_NEW_SPACE = 2 * 1024 * 1024;

/** Whether the process's V8 flags already size the young generation. */
function operatorSizedYoungGeneration(execArgv: readonly string[], nodeOptions: string): boolean {
  return givenToNode(/^--(max|min)[-_]semi[-_]space[-_]size|^--semi[-_]space[-_]growth[-_]factor/, execArgv, nodeOptions);
}

/** The addon, or null where it is not built or does not load (the caller keeps the nursery small). */
function memoryAddon(): MemoryAddon | null {
  if (process.platform !== 'linux' || !existsSync(MEMORY_ADDON_PATH)) return null;
  try {
    return createRequire(import.meta.url)(MEMORY_ADDON_PATH) as MemoryAddon;
  } catch {
    return null;
  }
}

/** The new space's size (both semi-spaces' capacity as V8 reports it). */
function newSpaceSize(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Checks every IDLE_CHECK_MS, without keeping the process alive, for an idle process with a grown nursery. */
function giveBackWhenIdle(addon: MemoryAddon): void {
  let last = process.cpuUsage();
  const check = (): void => {
    const now = process.cpuUsage();
    const busyUs = now.user - last.user + now.system - last.system;
    last = now;
    // The heap statistics only when idle: a busy process pays one cpuUsage() per check.
    if (busyUs >= IDLE_CHECK_MS * 1000 * IDLE_CPU_SHARE || newSpaceSize() <= GROWN_NEW_SPACE) return;
    // V8 marks incrementally and shrinks the new space at the end (within a second); a check that
    // asks again meanwhile changes nothing (V8 starts marking only when none is running).
    addon.reduceMemory();
  };
  setInterval(check, IDLE_CHECK_MS).unref();
}

const policy = process.env.SLUICE_V8_MEMORY;
if (policy !== 'default' && !operatorSizedYoungGeneration(process.execArgv, process.env.NODE_OPTIONS ?? '')) {
  const addon = policy === 'small' ? null : memoryAddon();
  if (addon === null) setFlagsFromString('--semi-space-growth-factor=1');
  else giveBackWhenIdle(addon);
}
