/**
 * What limit_req and limit_conn left on one request: the `$limit_req_status` and
 * `$limit_conn_status` values (nginx's r->main->limit_*_status: set once per request, so an
 * internal redirect is not limited again), the limit_conn counts it holds until it ends, and the
 * timer of a limit_req delay. {@link RequestLimits.end} runs when the request ends (Runtime.finish),
 * however it ends: a tunnel closing, a client leaving while delayed.
 */
import type { ConnHold, LimitStore } from './limit-store.js';

export type LimitReqStatus = 'PASSED' | 'DELAYED' | 'REJECTED' | 'DELAYED_DRY_RUN' | 'REJECTED_DRY_RUN';
export type LimitConnStatus = 'PASSED' | 'REJECTED' | 'REJECTED_DRY_RUN';

export class RequestLimits {
  reqStatus: LimitReqStatus | undefined = undefined;
  connStatus: LimitConnStatus | undefined = undefined;
  #holds: readonly ConnHold[] = [];
  #store: LimitStore | null = null;
  #timer: NodeJS.Timeout | null = null;
  #wake: ((alive: boolean) => void) | null = null;
  #ended = false;

  get ended(): boolean {
    return this.#ended;
  }

  /** Counts acquired for this request; released at once when it has ended meanwhile. */
  hold(store: LimitStore, holds: readonly ConnHold[]): void {
    if (this.#ended) {
      store.release(holds);
      return;
    }
    this.#store = store;
    this.#holds = holds;
  }

  /** Waits `ms` on a timer (nginx's write-event timer); false when the request ended first. */
  delay(ms: number): Promise<boolean> {
    if (this.#ended) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(limitDelayDone, ms, this);
    });
  }

  /** @internal the delay's timer fired. */
  woke(): void {
    this.#timer = null;
    const wake = this.#wake;
    this.#wake = null;
    wake?.(true);
  }

  /** The request ended: counts released, a pending delay cancelled. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const wake = this.#wake;
    this.#wake = null;
    wake?.(false);
    if (this.#store !== null && this.#holds.length > 0) this.#store.release(this.#holds);
    this.#holds = [];
    this.#store = null;
  }
}

function limitDelayDone(limits: RequestLimits): void {
  limits.woke();
}
