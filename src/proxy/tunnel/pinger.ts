/**
 * websocket_ping_interval / websocket_ping_timeout: Sluice's own pings on each leg of a WebSocket
 * tunnel. A leg nothing was read from for the interval gets a ping (RFC 6455 5.5.2; masked
 * towards the upstream, as a client's frames must be, 5.1) at a frame boundary of the direction
 * towards it; the leg's frame follower takes the matching pong out of the stream, so the other
 * endpoint never sees it, while the endpoints' own pings and pongs pass untouched. A leg that
 * sends nothing at all within the timeout after the ping is dead (a half-dead mobile connection,
 * a peer that vanished without a FIN): the relay closes it.
 */
import { randomBytes } from 'node:crypto';
import { encodeFrame } from '../../websocket/frame-writer.js';
import { Opcode } from '../../websocket/opcodes.js';
import type { Leg } from './legs.js';

/** The two settings, in ms (timeout 0: pings keep going, nobody is declared dead). */
export interface PingSettings {
  readonly interval: number;
  readonly timeout: number;
}

/** What the pinger keeps per leg. */
interface LegState {
  readonly leg: Leg;
  /** Something was read from the leg since the last tick. */
  heard: boolean;
  /** When something was last heard (at tick resolution). */
  lastHeard: number;
  /** When Sluice's ping was due, 0: none outstanding. */
  pingAt: number;
  /** A ping waiting for the direction towards the leg to reach a frame boundary. */
  pending: Buffer | null;
}

/** Ticks per interval (or timeout, if shorter): how late a silence may be noticed, as a fraction. */
const TICKS = 4;
/** The shortest tick. */
const MIN_TICK_MS = 10;

export class Pinger {
  readonly #settings: PingSettings;
  readonly #legs: [LegState, LegState];
  readonly #dead: (leg: Leg) => void;
  #timer: NodeJS.Timeout | null = null;

  /** `dead` is called once, for the first leg that did not answer in time. */
  constructor(settings: PingSettings, client: Leg, upstream: Leg, dead: (leg: Leg) => void) {
    this.#settings = settings;
    const now = performance.now();
    const state = (leg: Leg): LegState => ({ leg, heard: false, lastHeard: now, pingAt: 0, pending: null });
    this.#legs = [state(client), state(upstream)];
    this.#dead = dead;
  }

  start(): void {
    const { interval, timeout } = this.#settings;
    const tick = Math.max(MIN_TICK_MS, Math.floor(Math.min(interval, timeout > 0 ? timeout : interval) / TICKS));
    this.#timer = setInterval(pingerTick, tick, this);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#legs[0].pending = this.#legs[1].pending = null;
  }

  /** A ping of Sluice's waits for a frame boundary. */
  get busy(): boolean {
    return this.#legs[0].pending !== null || this.#legs[1].pending !== null;
  }

  /** Bytes were read from `leg`: it is alive. */
  heard(leg: Leg): void {
    this.#stateOf(leg).heard = true;
  }

  /**
   * The direction read from `from` passed bytes and is at a frame boundary: a ping waiting to go the
   * same way goes now.
   */
  atBoundary(from: Leg): void {
    const to = this.#stateOf(from.other);
    if (to.pending === null) return;
    const frame = to.pending;
    to.pending = null;
    to.leg.write(frame);
  }

  #stateOf(leg: Leg): LegState {
    return this.#legs[0].leg === leg ? this.#legs[0] : this.#legs[1];
  }

  /** @internal */
  tick(): void {
    const now = performance.now();
    const { interval, timeout } = this.#settings;
    for (const s of this.#legs) {
      if (s.heard) {
        s.heard = false;
        s.lastHeard = now;
        s.pingAt = 0;
        continue;
      }
      if (s.pingAt > 0 && timeout > 0) {
        if (now - s.pingAt >= timeout) {
          this.stop();
          this.#dead(s.leg);
          return;
        }
        continue;
      }
      if (now - Math.max(s.lastHeard, s.pingAt) >= interval) this.#ping(s, now);
    }
  }

  #ping(s: LegState, now: number): void {
    s.pingAt = now;
    const leg = s.leg;
    if (leg.gone || leg.writableEnded || leg.guard === null) return;
    const token = randomBytes(8);
    leg.guard.pongToken = token;
    const frame = encodeFrame({ opcode: Opcode.PING, payload: token, mask: leg.side === 'upstream' });
    // Between two frames of the direction towards the leg, never inside one.
    const towards = leg.other.guard;
    if (towards === null || towards.atBoundary) leg.write(frame);
    else s.pending = frame;
  }
}

function pingerTick(pinger: Pinger): void {
  pinger.tick();
}
