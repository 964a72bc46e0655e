import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What native/sluice_tunnel.c exports (see the comments there). */
export interface TunnelAddon {
  /**
   * Starts the I/O thread; `onReports` gets [slot, reason, errno, closeSide, closeCode, messagesUp,
   * messagesDown, kind, violation, violationSide, violationSize, ...]: kind 0 for a tunnel that ended,
   * 1 for a guardrail that started ending it (closeSide -1: no close frame; 0 client, 1 upstream;
   * violation 1 frame, 2 message, 3 rate, 4 ping timeout; violationSide 0 client, 1 upstream).
   */
  init(onReports: (flat: number[]) => void, counters: Float64Array, spliceMin: number): boolean;
  /**
   * Duplicates both descriptors and hands the pair to the I/O thread; false when it could not.
   * `up`/`down`: the frame cursors ([have, need, len7, masked, extended, remaining, messageBytes]) of a
   * WebSocket tunnel; `guardrails`: [maxFrame, maxMessage, pingInterval, pingTimeout, rate, burst,
   * close, both] (0: off), or null. `defer`: the I/O thread is not woken for it until wake()
   * (ignored by an addon built before it, which wakes the thread itself). `ownUpstream`: the upstream
   * descriptor is a handshake's upstream leg's (native/sluice_upstream.c), taken as it is, not
   * duplicated; `toClient`: bytes for the client first (the server's after its 101; unguarded only).
   * `clientWatch` a number: the client descriptor is one the addon accepted (native/sluice_accept.c),
   * taken as it is, not duplicated, with the epoll registration of that watch (-1: none), which
   * adopt() ends (the I/O thread modifies the registration); the caller neither closes the
   * descriptor nor ends the watch.
   */
  adopt(
    slot: number, clientFd: number, upstreamFd: number, idleMs: number, up: readonly number[] | null, down: readonly number[] | null, guardrails: readonly number[] | null,
    defer?: boolean, ownUpstream?: boolean, toClient?: Buffer | null, clientWatch?: number | null,
  ): boolean;
  /**
   * Wakes the I/O thread for the adopts queued with `defer`; false when none was owed. Absent
   * from an addon built before it.
   */
  wake?(): boolean;
  goAway(slot: number, toUpstream: Buffer, toClient: Buffer): boolean;
  destroy(slot: number): boolean;
  /** Whether open native tunnels keep the event loop alive (as open sockets do). */
  ref(on: boolean): boolean;
  stats(): NativeTunnelStats;
  /**
   * Gives the C heap's free pages back to the kernel (glibc's malloc_trim); false when nothing
   * was released. Absent from an addon built before it.
   */
  trimMemory?(): boolean;
  /**
   * The upstream legs of WebSocket handshakes (native/sluice_upstream.c; absent from an addon built
   * before them): see src/proxy/client/native-legs.ts.
   */
  legInit?(onReports: (flat: (number | Buffer | null)[]) => void): boolean;
  legStart?(
    id: number, family: number, address: string, port: number, head: string, connectMs: number, sendMs: number, readMs: number, maxHead: number,
    defer: boolean,
  ): boolean;
  legCancel?(id: number): boolean;
  legWake?(): boolean;
  legRef?(on: boolean): boolean;
  legStats?(): NativeLegStats;
  /**
   * A listening socket with SO_REUSEPORT (native/sluice_bind.c; absent from an addon built before
   * it): its descriptor, or -errno. For `listen ... reuseport` where Node has no reusePort.
   */
  bindReusePort?(host: string, port: number, ipv6only: boolean, backlog: number): number;
}

/** What the upstream legs of handshakes have done so far. */
export interface NativeLegStats {
  readonly started: number;
  /** Handed to JavaScript with the descriptor: a response head (or what came before the server closed). */
  readonly answered: number;
  readonly failed: number;
  readonly cancelled: number;
}

export interface NativeTunnelStats {
  readonly adopted: number;
  readonly closed: number;
  readonly splicedBytes: number;
  readonly copiedBytes: number;
  /** Tunnel directions holding a buffer of bytes their receiver has not taken yet (freed once drained). */
  readonly pendingBuffers: number;
  readonly spliceMin: number;
}

/** Where `npm ci` (scripts/build-native.mjs) puts the addon, from dist/src/core/. */
export const ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/sluice_tunnel.node', import.meta.url));

let loaded: { addon: TunnelAddon | null; why: string } | null = null;

/**
 * The native tunnel addon, loaded once per process; null when it is not built or does not load
 * (then `nativeAddonProblem()` says why). `SLUICE_NATIVE=off` in the environment leaves it unloaded.
 */
export function tunnelAddon(): TunnelAddon | null {
  loaded ??= load();
  return loaded.addon;
}

/** Why the addon is not available ("" when it is). */
export function nativeAddonProblem(): string {
  loaded ??= load();
  return loaded.why;
}

function load(): { addon: TunnelAddon | null; why: string } {
  if (process.env.SLUICE_NATIVE === 'off') return { addon: null, why: 'SLUICE_NATIVE=off is set in the environment' };
  if (process.platform !== 'linux') return { addon: null, why: `it is Linux-only and this is ${process.platform}` };
  if (!existsSync(ADDON_PATH)) return { addon: null, why: `it is not built (${ADDON_PATH} is missing)` };
  try {
    return { addon: createRequire(import.meta.url)(ADDON_PATH) as TunnelAddon, why: '' };
  } catch (e) {
    return { addon: null, why: `it does not load: ${(e as Error).message}` };
  }
}
