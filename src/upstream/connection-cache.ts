import type { Socket } from 'node:net';
import { timerDelay } from '../core/timers.js';
import { armSocketTimer } from './socket-timer.js';

/** Per-connection bookkeeping kept on the socket while it is in the cache or serving a request. */
const kRequests = Symbol('sluice.requests');
const kCache = Symbol('sluice.cache');
/** The owner's listeners stay on the socket for its life and pass idle-time events to {@link idleSocketEvent}. */
const kRouted = Symbol('sluice.routed');

type CachedSocket = Socket & { [kRequests]?: number; [kCache]?: { cache: ConnectionCache; key: string }; [kRouted]?: boolean };

/**
 * Says that `socket`'s owner keeps its own 'data', 'end', 'close', 'error' and 'timeout'
 * listeners on it for as long as it is the owner's, and passes each event that comes while no
 * exchange has the socket to {@link idleSocketEvent}: the cache then adds and removes none at
 * each put and take (five of each per request otherwise, each add of 'end' or 'close' making an
 * array, since Node listens there too). `false`: the owner took its listeners off (an upgrade's
 * tunnel has the socket now).
 */
export function routeIdleEvents(socket: Socket, routed: boolean): void {
  (socket as CachedSocket)[kRouted] = routed;
}

/**
 * An event on a routed socket that no exchange has: when the socket is idle in a cache, it is
 * dropped there (anything on an idle connection ends it, see {@link ConnectionCache}).
 */
export function idleSocketEvent(socket: Socket): void {
  if ((socket as CachedSocket)[kCache] !== undefined) idleOnGone.call(socket);
}

/**
 * ngx_http_upstream_keepalive_module for Sluice's own upstream client: up to `keepalive` idle
 * connections per key (a server's address, and for TLS the identity the connection was made
 * under), handed out last-in first-out, each closed after `keepalive_timeout` idle or after its
 * `keepalive_requests`-th request. An idle connection that the server closes, resets or sends
 * anything on is dropped at once (nginx does the same: an idle upstream connection has nothing to
 * say).
 */
export class ConnectionCache {
  readonly #idle = new Map<string, CachedSocket[]>();
  readonly max: number;
  readonly timeoutMs: number;
  readonly maxRequests: number;
  #closed = false;

  constructor(max: number, timeoutMs: number, maxRequests: number) {
    this.max = max;
    this.timeoutMs = timeoutMs;
    this.maxRequests = maxRequests;
  }

  /** An idle connection for `key`, or null. */
  take(key: string): Socket | null {
    const list = this.#idle.get(key);
    if (list === undefined) return null;
    let found: Socket | null = null;
    for (let s = list.pop(); s !== undefined; s = list.pop()) {
      detachIdle(s);
      if (!s.destroyed && s.readable && s.writable) {
        found = s;
        break;
      }
      s.destroy();
    }
    // Keys can be many (a TLS name from variables): an empty list is not kept.
    if (list.length === 0) this.#idle.delete(key);
    return found;
  }

  /** Counts one more request on `socket`; true when it may go back to the cache afterwards. */
  countRequest(socket: Socket): boolean {
    const s = socket as CachedSocket;
    const n = (s[kRequests] ?? 0) + 1;
    s[kRequests] = n;
    return n < this.maxRequests;
  }

  /** Keeps `socket` for the next request to `key`; false (the caller closes it) when the cache for it is full. */
  put(key: string, socket: Socket): boolean {
    const s = socket as CachedSocket;
    if (this.#closed || s.destroyed || !s.readable || !s.writable) return false;
    let list = this.#idle.get(key);
    if (list === undefined) {
      list = [];
      this.#idle.set(key, list);
    }
    if (list.length >= this.max) return false;
    list.push(s);
    s[kCache] = { cache: this, key };
    if (s[kRouted] !== true) {
      s.on('data', idleOnData);
      s.on('end', idleOnGone);
      s.on('close', idleOnGone);
      s.on('error', idleOnGone);
      s.on('timeout', idleOnGone);
    }
    armSocketTimer(s, timerDelay(this.timeoutMs));
    s.resume();
    return true;
  }

  /** @internal */
  forget(key: string, socket: Socket): void {
    const list = this.#idle.get(key);
    const i = list?.indexOf(socket as CachedSocket) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    if (list?.length === 0) this.#idle.delete(key);
  }

  /** Idle connections now (for tests and the status pages). */
  idleCount(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  /** Closes every idle connection (reload, shutdown); connections serving a request finish it. */
  closeIdle(): void {
    for (const list of this.#idle.values()) {
      for (const s of list.splice(0)) {
        detachIdle(s);
        s.destroy();
      }
    }
    this.#idle.clear();
  }

  /** Closes every idle connection and keeps none from now on (shutdown). */
  close(): void {
    this.#closed = true;
    this.closeIdle();
  }
}

function detachIdle(s: CachedSocket): void {
  s[kCache] = undefined;
  if (s[kRouted] !== true) {
    s.removeListener('data', idleOnData);
    s.removeListener('end', idleOnGone);
    s.removeListener('close', idleOnGone);
    s.removeListener('error', idleOnGone);
    s.removeListener('timeout', idleOnGone);
  }
  armSocketTimer(s, 0);
  s.pause();
}

function idleOnGone(this: CachedSocket): void {
  const at = this[kCache];
  if (at) at.cache.forget(at.key, this);
  detachIdle(this);
  // A routed socket's owner keeps an 'error' listener on it.
  if (this[kRouted] !== true) this.on('error', noop);
  this.destroy();
}

/** Bytes on an idle connection: a response nobody asked for; the connection cannot be trusted. */
function idleOnData(this: CachedSocket): void {
  idleOnGone.call(this);
}

function noop(): void {}
