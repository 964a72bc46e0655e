/**
 * Shared `ssl_session_cache` zones across worker processes. nginx keeps such a zone in shared
 * memory, seen by every worker at once. Here each worker keeps a copy (a hit costs nothing), a
 * session a worker stores goes through the primary to the others, and the primary keeps every
 * zone whole: a worker that misses asks it before the handshake goes on. That closes the race a
 * copy alone leaves open (a client that resumes at once on another worker, before the copy
 * reached it) and serves workers started after the session was made.
 *
 * Why the primary's answer is not older than the client: the storing worker writes its message to
 * the IPC pipe during the handshake (before the client has its session), so by the time another
 * worker asks, that message is in the primary's pipe. The primary answers after the current turn
 * of its event loop (setImmediate), when every message that was readable with the question has
 * been read.
 */
import type { SessionSync, SharedSession } from '../server/tls-session-cache.js';
import { SessionStore, zoneCapacity } from '../server/tls-session-cache.js';

/** Worker -> primary. */
export type SessionRequest =
  | { readonly sluice: 'tls-session'; readonly session: SharedSession }
  | { readonly sluice: 'tls-session-fetch'; readonly id: number; readonly zone: string; readonly ids: readonly string[] };

/** Primary -> worker. */
export type SessionAnswer =
  | { readonly sluice: 'tls-session'; readonly session: SharedSession }
  | { readonly sluice: 'tls-session-found'; readonly id: number; readonly session: SharedSession | null };

/**
 * How long a handshake waits for the primary's answer before going on as a miss (a full
 * handshake): the primary answers within a turn of its loop; this only bounds a primary that is
 * gone or stuck.
 */
export const FETCH_WAIT_MS = 1_000;

/** A worker's side: publishes what it stores, asks the primary on a miss. */
export class WorkerSessionSync implements SessionSync {
  readonly #send: (m: SessionRequest) => void;
  readonly #pending = new Map<number, (s: SharedSession | null) => void>();
  #next = 1;

  constructor(send: (m: SessionRequest) => void) {
    this.#send = send;
  }

  publish(session: SharedSession): void {
    this.#send({ sluice: 'tls-session', session });
  }

  fetch(zone: string, ids: readonly string[]): Promise<SharedSession | null> {
    const id = this.#next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#settle(id, null), FETCH_WAIT_MS);
      this.#pending.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      this.#send({ sluice: 'tls-session-fetch', id, zone, ids });
    });
  }

  /** The primary's answer to one of this worker's questions. */
  found(m: { readonly id: number; readonly session: SharedSession | null }): void {
    this.#settle(m.id, m.session);
  }

  #settle(id: number, session: SharedSession | null): void {
    const resolve = this.#pending.get(id);
    this.#pending.delete(id);
    resolve?.(session);
  }
}

/** The primary's side: every shared zone, whole, for the primary's life (reloads keep them). */
export class PrimarySessions {
  readonly #zones = new Map<string, { store: SessionStore; size: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A session a worker stored. */
  stored(s: SharedSession): void {
    let zone = this.#zones.get(s.zone);
    if (zone === undefined) this.#zones.set(s.zone, zone = { store: new SessionStore(zoneCapacity(s.size)), size: s.size });
    // A reload may resize the zone: the latest size a worker sent is the zone's.
    zone.size = s.size;
    zone.store.capacity = zoneCapacity(s.size);
    zone.store.set(s.id, Buffer.from(s.data, 'base64'), s.expires, this.#now());
  }

  /** Answers a worker's question after this turn of the event loop (see the module comment). */
  fetch(m: { readonly id: number; readonly zone: string; readonly ids: readonly string[] }, answer: (a: SessionAnswer) => void): void {
    setImmediate(() => answer({ sluice: 'tls-session-found', id: m.id, session: this.#find(m.zone, m.ids) }));
  }

  #find(zone: string, ids: readonly string[]): SharedSession | null {
    const z = this.#zones.get(zone);
    if (z === undefined) return null;
    const now = this.#now();
    for (const id of ids) {
      const e = z.store.entry(id, now);
      if (e !== null) return { zone, size: z.size, id, data: e.data.toString('base64'), expires: e.expires };
    }
    return null;
  }
}
