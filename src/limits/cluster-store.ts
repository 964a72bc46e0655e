/**
 * Limit zones summed over worker processes: nginx keeps a zone in shared memory that every worker
 * locks; here the primary keeps every zone (a MemoryLimitStore) and a worker asks it over the
 * cluster IPC channel, one round trip per request that a zone applies to (releases are one-way).
 * Exact, as nginx is: the primary applies each request's checks at once, in arrival order.
 * The primary also remembers what each worker holds, so the counts of a worker that dies are
 * released (nginx's cleanup runs in the worker; a crashed nginx worker leaks them instead).
 */
import type { ConnCheck, ConnHold, ConnOutcome, LimitStore, ReqCheck, ReqOutcome } from './limit-store.js';
import { zoneId } from './limit-store.js';
import { MemoryLimitStore } from './memory-store.js';

/** Worker -> primary. */
export type LimitRequest =
  | { readonly sluice: 'limit-req'; readonly id: number; readonly checks: readonly ReqCheck[] }
  | { readonly sluice: 'limit-conn'; readonly id: number; readonly checks: readonly ConnCheck[] }
  | { readonly sluice: 'limit-release'; readonly holds: readonly ConnHold[] };

/** Primary -> worker. */
export type LimitAnswer = { readonly sluice: 'limit-result'; readonly id: number; readonly outcome: ReqOutcome | ConnOutcome };

/** A worker's store: each call is a question to the primary. */
export class WorkerLimitStore implements LimitStore {
  readonly #send: (m: LimitRequest) => void;
  readonly #pending = new Map<number, (outcome: ReqOutcome | ConnOutcome) => void>();
  #next = 1;

  constructor(send: (m: LimitRequest) => void) {
    this.#send = send;
  }

  #ask<T extends ReqOutcome | ConnOutcome>(m: (id: number) => LimitRequest): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve) => {
      this.#pending.set(id, resolve as (o: ReqOutcome | ConnOutcome) => void);
      this.#send(m(id));
    });
  }

  limitReq(checks: readonly ReqCheck[]): Promise<ReqOutcome> {
    return this.#ask((id) => ({ sluice: 'limit-req', id, checks }));
  }

  acquire(checks: readonly ConnCheck[]): Promise<ConnOutcome> {
    return this.#ask((id) => ({ sluice: 'limit-conn', id, checks }));
  }

  release(holds: readonly ConnHold[]): void {
    this.#send({ sluice: 'limit-release', holds });
  }

  /** The primary's answer to one of this worker's questions. */
  answered(m: LimitAnswer): void {
    const resolve = this.#pending.get(m.id);
    this.#pending.delete(m.id);
    resolve?.(m.outcome);
  }
}

function holdKey(h: ConnHold): string {
  return `${zoneId(h.zone)}\u0000${h.key}`;
}

/** The primary's side: every zone, and the counts each worker holds. */
export class PrimaryLimitStore {
  readonly #store: MemoryLimitStore;
  /** Per worker: its holds with their counts, so a worker's exit releases them. */
  readonly #held = new Map<number, Map<string, { hold: ConnHold; n: number }>>();

  constructor(store = new MemoryLimitStore()) {
    this.#store = store;
  }

  /** Handles one message of a worker; returns the answer to send back, if any. */
  handle(worker: number, m: LimitRequest): LimitAnswer | null {
    switch (m.sluice) {
      case 'limit-req':
        return { sluice: 'limit-result', id: m.id, outcome: this.#store.limitReq(m.checks) };
      case 'limit-conn': {
        const outcome = this.#store.acquire(m.checks);
        if (outcome.ok) this.#count(worker, m.checks, 1);
        return { sluice: 'limit-result', id: m.id, outcome };
      }
      case 'limit-release':
        this.#count(worker, m.holds, -1);
        this.#store.release(m.holds);
        return null;
    }
  }

  #count(worker: number, holds: readonly ConnHold[], by: number): void {
    let mine = this.#held.get(worker);
    if (mine === undefined) this.#held.set(worker, mine = new Map());
    for (const h of holds) {
      const k = holdKey(h);
      const e = mine.get(k);
      if (e === undefined) {
        if (by > 0) mine.set(k, { hold: h, n: by });
      } else if ((e.n += by) <= 0) mine.delete(k);
    }
  }

  /** A worker exited: what it still held is released. */
  workerGone(worker: number): void {
    const mine = this.#held.get(worker);
    this.#held.delete(worker);
    if (mine === undefined) return;
    for (const { hold, n } of mine.values()) for (let i = 0; i < n; i++) this.#store.release([hold]);
  }
}
