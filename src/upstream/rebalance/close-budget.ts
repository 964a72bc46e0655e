/**
 * How many tunnels `websocket_rebalance` may close now: a token bucket that refills at the rate
 * (fractional rates included: a fleet instance's share may be 2.5 a second) and holds little more
 * than one tick's worth, so closes come a few at a time, never as a herd; and a log of the closes
 * of the last second, so that no window of one second ever sees more than the rate (rounded down,
 * at least one), however the rate changed between ticks or the bucket was filled.
 */

/** The span of the rate's window, ms. */
export const RATE_WINDOW_MS = 1000;

/**
 * A close is remembered this much longer than the window: closes are stamped when the tick starts
 * but go out one after another during it, so that a close made late in one tick and one made early
 * in the tick a window later are still a full second apart on any clock that watches them.
 */
export const WINDOW_MARGIN_MS = 50;

export class CloseBudget {
  #rate: number;
  #tokens: number;
  #last: number;
  readonly #tickMs: number;
  /** When the closes of the last RATE_WINDOW_MS happened (monotonic ms), oldest first. */
  readonly #recent: number[] = [];

  /**
   * @param rate - closes per second (> 0).
   * @param tickMs - how often the rebalancer asks: the bucket holds one tick's worth plus one.
   * @param now - monotonic ms.
   */
  constructor(rate: number, tickMs: number, now: number) {
    this.#rate = rate;
    this.#tickMs = tickMs;
    this.#tokens = 1;
    this.#last = now;
  }

  get rate(): number {
    return this.#rate;
  }

  /** Closes in the last second (for the status page and the tests of this class). */
  recent(now: number): number {
    this.#expire(now);
    return this.#recent.length;
  }

  /** Changes the rate (a fleet share moves, a reload changes max_rate); the tokens already earned stay. */
  setRate(rate: number, now: number): void {
    this.#refill(now);
    this.#rate = rate;
  }

  /** How many closes may happen now, at most `wanted`; they count as done. */
  take(wanted: number, now: number): number {
    if (wanted <= 0 || this.#rate <= 0) {
      this.#refill(now);
      return 0;
    }
    this.#refill(now);
    this.#expire(now);
    const windowCap = Math.max(1, Math.floor(this.#rate + 1e-9)) - this.#recent.length;
    const n = Math.max(0, Math.min(wanted, Math.floor(this.#tokens + 1e-9), windowCap));
    this.#tokens -= n;
    for (let i = 0; i < n; i++) this.#recent.push(now);
    return n;
  }

  #capacity(): number {
    return (this.#rate * this.#tickMs) / 1000 + 1;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#capacity(), this.#tokens + (this.#rate * elapsed) / 1000);
  }

  #expire(now: number): void {
    while (this.#recent.length > 0 && this.#recent[0]! <= now - RATE_WINDOW_MS - WINDOW_MARGIN_MS) this.#recent.shift();
  }
}
