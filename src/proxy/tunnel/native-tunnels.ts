import { constants } from 'node:os';
import { tunnelAddon } from '../../core/native-addon.js';
import type { NativeTunnelStats, TunnelAddon } from '../../core/native-addon.js';

/** Tunnels the addon can hold at once in one process (two descriptors each: far above the open-file limit). */
export const NATIVE_SLOTS = 65_536;

/**
 * Frames whose payload is at least this long move with splice(2) instead of through the read
 * buffer (`SLUICE_SPLICE_MIN` overrides it; 0 turns splicing off). Chosen by measurement: see
 * docs/benchmarks.md.
 */
export const DEFAULT_SPLICE_MIN = 16 * 1024;

/**
 * A burst of hand-overs (clients reconnecting at once) leaves the C heap with the freed objects of
 * thousands of sockets around the tunnels' long-lived allocations, pages glibc keeps. Once
 * TIDY_AFTER_ADOPTED tunnels have been handed over since the last time and none for
 * TIDY_DELAY_MS, the addon gives those pages back (docs/benchmarks.md, "Idle memory"): once per
 * burst, when it is over. (A full V8 collection there was measured too and left out: it freed the
 * handshakes' promoted garbage but raised RSS, V8 keeping the pages its compaction moved to.)
 */
const TIDY_DELAY_MS = 1000;
const TIDY_AFTER_ADOPTED = 256;

/** What the addon saw of a WebSocket session while it held the tunnel. */
export interface NativeSession {
  /** The side whose close frame came first, null: none came. */
  readonly closeSide: 'client' | 'upstream' | null;
  /** Its status code (1005: it had none). */
  readonly closeCode: number;
  /** Data messages each way, counted by the addon only. */
  readonly messagesIn: number;
  readonly messagesOut: number;
}

/** Which guardrail the addon saw broken. */
export type NativeViolation = 'frame' | 'message' | 'rate' | 'ping';

/** A tunnel whose sockets the addon holds. */
export interface NativeOwner {
  nativeEnded(reason: string, session: NativeSession): void;
  /**
   * A guardrail started ending the tunnel (the addon sends the close frames): `size` is the
   * payload the refused header announced (with its message's earlier fragments). The session
   * figures are those so far; the end report follows.
   */
  nativeRefused(violation: NativeViolation, side: 'client' | 'upstream', size: number, session: NativeSession): void;
}

/**
 * Numbers per report: slot, reason, errno, close side (-1, 0, 1), close code, messages each way,
 * kind (0 end, 1 refused), violation (1 frame, 2 message, 3 rate, 4 ping), its side (0, 1), its size.
 */
const REPORT_STRIDE = 11;

const VIOLATIONS: readonly NativeViolation[] = ['frame', 'frame', 'message', 'rate', 'ping'];

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The reason strings of the TypeScript tunnel, by the addon's reason codes. */
function reasonText(code: number, errno: number): string {
  const err = (): string => ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
  switch (code) {
    case 1: return 'client closed';
    case 2: return 'upstream closed';
    case 3: return `client error: ${err()}`;
    case 4: return `upstream error: ${err()}`;
    case 5: return 'idle timeout';
    default: return 'destroyed';
  }
}

/**
 * The process's native tunnels: slots in the byte counters the I/O thread writes, who owns each
 * slot, and the reference that keeps the event loop alive while any is open.
 */
export class NativeTunnels {
  readonly #addon: TunnelAddon;
  /** [client->upstream, upstream->client] bytes per slot, written by the I/O thread. */
  readonly counters = new Float64Array(NATIVE_SLOTS * 2);
  readonly #owners: (NativeOwner | undefined)[] = [];
  readonly #free: number[] = [];
  #next = 0;
  #open = 0;
  #adoptedSinceTidy = 0;
  #tidyTimer: NodeJS.Timeout | null = null;
  /** The addon wakes its thread when asked (wake()), once per turn for every adopt of it. */
  readonly #deferWake: boolean;
  #wakeDue = false;

  constructor(addon: TunnelAddon, spliceMin: number) {
    this.#addon = addon;
    this.#deferWake = typeof addon.wake === 'function';
    addon.init((flat) => this.#ended(flat), this.counters, spliceMin);
  }

  get open(): number {
    return this.#open;
  }

  /**
   * Hands the two descriptors over; the slot, or -1 when the addon could not take them. `ownUpstream`:
   * the upstream descriptor is an upstream leg's (native-exchange.ts), taken as it is, not duplicated;
   * `toClient`: bytes for the client first (the server's after its 101); `clientWatch` a number: the
   * client descriptor is one the addon accepted, taken as it is with that watch's registration (-1: none).
   */
  adopt(
    owner: NativeOwner, clientFd: number, upstreamFd: number, idleMs: number, up: readonly number[] | null, down: readonly number[] | null,
    guardrails: readonly number[] | null = null, ownUpstream = false, toClient: Buffer | null = null, clientWatch: number | null = null,
  ): number {
    const slot = this.#free.pop() ?? (this.#next < NATIVE_SLOTS ? this.#next++ : -1);
    if (slot < 0) return -1;
    this.counters[slot * 2] = 0;
    this.counters[slot * 2 + 1] = 0;
    if (!this.#addon.adopt(slot, clientFd, upstreamFd, idleMs, up, down, guardrails, this.#deferWake, ownUpstream, toClient, clientWatch)) {
      this.#free.push(slot);
      return -1;
    }
    if (this.#deferWake && !this.#wakeDue) {
      // The I/O thread learns of this turn's hand-overs in one wake-up, once the turn's I/O
      // callbacks have run: a wake-up per hand-over could hand it the CPU mid-turn each time
      // (docs/benchmarks.md, "CPU per handshake, third pass").
      this.#wakeDue = true;
      setImmediate(wakeAddon, this);
    }
    this.#owners[slot] = owner;
    if (this.#open++ === 0) this.#addon.ref(true);
    if (++this.#adoptedSinceTidy >= TIDY_AFTER_ADOPTED) this.#tidyLater();
    return slot;
  }

  /** Tidies up once hand-overs have stopped for TIDY_DELAY_MS. */
  #tidyLater(): void {
    if (this.#tidyTimer !== null) {
      this.#tidyTimer.refresh();
      return;
    }
    this.#tidyTimer = setTimeout(() => {
      this.#tidyTimer = null;
      this.#adoptedSinceTidy = 0;
      this.#addon.trimMemory?.();
    }, TIDY_DELAY_MS);
    this.#tidyTimer.unref();
  }

  /** @internal The turn's hand-overs are queued: the I/O thread takes them now. */
  wake(): void {
    this.#wakeDue = false;
    this.#addon.wake?.();
  }

  goAway(slot: number, toUpstream: Buffer, toClient: Buffer): void {
    this.#addon.goAway(slot, toUpstream, toClient);
  }

  destroy(slot: number): void {
    this.#addon.destroy(slot);
  }

  stats(): NativeTunnelStats {
    return this.#addon.stats();
  }

  #ended(flat: number[]): void {
    for (let i = 0; i < flat.length; i += REPORT_STRIDE) {
      const slot = flat[i] as number;
      const side = flat[i + 3] as number;
      const session: NativeSession = {
        closeSide: side === 0 ? 'client' : side === 1 ? 'upstream' : null,
        closeCode: flat[i + 4] as number,
        messagesIn: flat[i + 5] as number,
        messagesOut: flat[i + 6] as number,
      };
      if (flat[i + 7] === 1) {
        const violation = VIOLATIONS[flat[i + 8] as number] ?? 'frame';
        this.#owners[slot]?.nativeRefused(violation, flat[i + 9] === 1 ? 'upstream' : 'client', flat[i + 10] as number, session);
        continue;
      }
      const owner = this.#owners[slot];
      this.#owners[slot] = undefined;
      try {
        owner?.nativeEnded(reasonText(flat[i + 1] as number, flat[i + 2] as number), session);
      } finally {
        this.#free.push(slot);
        if (--this.#open === 0) this.#addon.ref(false);
      }
    }
  }
}

function wakeAddon(tunnels: NativeTunnels): void {
  tunnels.wake();
}

let instance: NativeTunnels | null | undefined;

/** The process's native tunnels, or null when the addon is not available. */
export function nativeTunnels(): NativeTunnels | null {
  if (instance === undefined) {
    const addon = tunnelAddon();
    const env = process.env.SLUICE_SPLICE_MIN;
    const spliceMin = env !== undefined && /^\d+$/.test(env) ? Number(env) : DEFAULT_SPLICE_MIN;
    instance = addon ? new NativeTunnels(addon, spliceMin) : null;
  }
  return instance;
}
