/**
 * The upstream legs of WebSocket handshakes that the native addon runs on its I/O thread
 * (native/sluice_upstream.c): ids, who waits on each, and the batched reports. A leg connects,
 * writes the request head and reads the response head without a net.Socket; it ends in exactly
 * one report (a failure, its socket closed in C, or the descriptor and the bytes read, which
 * JavaScript then owns), and its id is free again only then. native-exchange.ts is the exchange
 * built on it.
 */
import { nativeTunnels } from '../tunnel/native-tunnels.js';
import { tunnelAddon } from '../../core/native-addon.js';
import type { NativeLegStats, TunnelAddon } from '../../core/native-addon.js';

/** How a leg ended (the addon's report kinds). */
export const LegEnd = {
  Head: 0,
  ConnectFailed: 1,
  ConnectTimeout: 2,
  SendFailed: 3,
  SendTimeout: 4,
  ReadFailed: 5,
  ReadTimeout: 6,
  Cancelled: 7,
} as const;
export type LegEnd = (typeof LegEnd)[keyof typeof LegEnd];

/** Who waits on a leg. */
export interface LegOwner {
  /**
   * The leg's one report. `fd` and `bytes` for Head: the descriptor (this process's to close or
   * adopt from now on) and every byte read; `connectMs`: from the start to the connection, -1 when
   * it never connected; `received`: the bytes read (in `bytes` with a head).
   */
  legEnded(kind: LegEnd, errno: number, fd: number, connectMs: number, received: number, bytes: Buffer | null): void;
}

/** Legs in flight at once (the addon's table). */
const MAX_LEGS = 65_536;
const REPORT_STRIDE = 7;

/** What a leg is asked to do (the request head as written, latin1, and the timeouts). */
export interface LegRequest {
  readonly family: 4 | 6;
  readonly host: string;
  readonly port: number;
  readonly head: string;
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
  readonly maxHeaderSize: number;
}

export class NativeLegs {
  readonly #addon: TunnelAddon;
  readonly #owners: (LegOwner | undefined)[] = [];
  readonly #free: number[] = [];
  #next = 0;
  #open = 0;
  #wakeDue = false;

  constructor(addon: TunnelAddon) {
    this.#addon = addon;
  }

  /** Starts a leg; its id, or -1 when the addon cannot take it (the caller connects itself). */
  start(owner: LegOwner, r: LegRequest): number {
    const addon = this.#addon;
    const id = this.#free.pop() ?? (this.#next < MAX_LEGS ? this.#next++ : -1);
    if (id < 0) return -1;
    if (!addon.legStart!(id, r.family, r.host, r.port, r.head, r.connectTimeout, r.sendTimeout, r.readTimeout, r.maxHeaderSize, true)) {
      this.#free.push(id);
      return -1;
    }
    this.#owners[id] = owner;
    if (this.#open++ === 0) addon.legRef!(true);
    if (!this.#wakeDue) {
      // One wake-up of the I/O thread for the turn's legs, once its callbacks have run (as the
      // relay's adopts: docs/benchmarks.md, "CPU per handshake, third pass").
      this.#wakeDue = true;
      setImmediate(wakeLegs, this);
    }
    return id;
  }

  /** The leg ends at once (its socket closed in C); its report still comes, as `Cancelled` or as what it had reached. */
  cancel(id: number): void {
    this.#addon.legCancel!(id);
  }

  /** @internal */
  wake(): void {
    this.#wakeDue = false;
    this.#addon.legWake!();
  }

  stats(): NativeLegStats {
    return this.#addon.legStats!();
  }

  /** @internal */
  reports(flat: (number | Buffer | null)[]): void {
    for (let i = 0; i < flat.length; i += REPORT_STRIDE) {
      const id = flat[i] as number;
      const owner = this.#owners[id];
      this.#owners[id] = undefined;
      this.#free.push(id);
      if (--this.#open === 0) this.#addon.legRef!(false);
      owner?.legEnded(
        flat[i + 1] as LegEnd, flat[i + 2] as number, flat[i + 3] as number, flat[i + 4] as number, flat[i + 5] as number, flat[i + 6] as Buffer | null,
      );
    }
  }
}

function wakeLegs(legs: NativeLegs): void {
  legs.wake();
}

let instance: NativeLegs | null | undefined;

/**
 * The process's upstream legs, or null: the addon is not available (or built before legs), or
 * `SLUICE_NATIVE_UPSTREAM=off` keeps every handshake's upstream leg in JavaScript.
 */
export function nativeLegs(): NativeLegs | null {
  if (instance === undefined) {
    instance = null;
    const addon = tunnelAddon();
    // The relay's thread must run first: the legs live on it.
    if (process.env.SLUICE_NATIVE_UPSTREAM !== 'off' && addon !== null && typeof addon.legInit === 'function' && nativeTunnels() !== null) {
      const legs = new NativeLegs(addon);
      if (addon.legInit((flat) => legs.reports(flat))) instance = legs;
    }
  }
  return instance;
}
