/**
 * `ssl_session_cache`: TLS sessions stored by id so a client that comes back resumes without a
 * full handshake (TLS 1.2 session ids; TLS 1.3 stateful tickets, which OpenSSL makes when
 * `ssl_session_tickets off`). Node.js asks through the tls.Server's 'newSession' and
 * 'resumeSession' events; as in nginx, the cache of the address's default server is the one used
 * (OpenSSL keeps the session context of the first SSL_CTX when SNI switches certificates).
 *
 * `builtin[:N]` is a cache of this process (a worker's own, as OpenSSL's internal cache is in
 * nginx). `shared:NAME:SIZE` is one cache for every worker process: each worker keeps a copy,
 * and a session one of them stores is sent through the primary to the others (`SessionSync`), so
 * a client resumes whichever worker it reaches next. The primary keeps the whole cache too: a
 * worker that misses asks it before answering the handshake (`SessionSync.fetch`), so a client
 * that comes back to another worker before the copy got there still resumes (nginx's shared
 * memory is seen by every worker at once), and so does one that reaches a worker started later.
 * Shared caches outlive reloads, as nginx's shared memory zones do; builtin ones start empty with
 * each configuration.
 */
import type { ServerConfig } from '../config/types.js';

/** nginx's rule of thumb: one megabyte of shared cache holds about 4000 sessions. */
export const SESSIONS_PER_MEGABYTE = 4000;

/** How a worker shares the sessions of a shared cache with the other processes. */
export interface SessionSync {
  /** A session this process stored: for the others. */
  publish(session: SharedSession): void;
  /** The first of `ids` (hex) stored in `zone` by any process, or null; asked on a local miss. */
  fetch?(zone: string, ids: readonly string[]): Promise<SharedSession | null>;
}

/** A session stored in a shared cache, as it travels between processes. */
export interface SharedSession {
  readonly zone: string;
  /** The zone's size in bytes, so a worker that has not used the zone yet can make it. */
  readonly size: number;
  /** Session id (hex) and serialized session (base64). */
  readonly id: string;
  readonly data: string;
  /** Epoch ms. */
  readonly expires: number;
}

/** How many sessions a shared zone of `size` bytes holds. */
export function zoneCapacity(size: number): number {
  return Math.max(1, Math.floor((size / (1024 * 1024)) * SESSIONS_PER_MEGABYTE));
}

/** Sessions by id (hex), oldest first, at most `capacity` of them. */
export class SessionStore {
  readonly #entries = new Map<string, { readonly data: Buffer; readonly expires: number }>();
  capacity: number;

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity);
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string, now: number): Buffer | null {
    return this.entry(id, now)?.data ?? null;
  }

  /** A live session and its expiry time. */
  entry(id: string, now: number): { readonly data: Buffer; readonly expires: number } | null {
    const e = this.#entries.get(id);
    if (e === undefined) return null;
    if (e.expires <= now) {
      this.#entries.delete(id);
      return null;
    }
    return e;
  }

  /** Stores a session; the oldest go first when the store is full (nginx expires the oldest too). */
  set(id: string, data: Buffer, expires: number, now: number): void {
    this.#entries.delete(id);
    for (const [k, e] of this.#entries) {
      if (e.expires > now && this.#entries.size < this.capacity) break;
      this.#entries.delete(k);
    }
    this.#entries.set(id, { data, expires });
  }
}

/** The stores a server's handshakes use; null when `ssl_session_cache` is `off` or `none`. */
interface ServerStores {
  readonly builtin: SessionStore | null;
  readonly shared: { readonly name: string; readonly size: number; readonly store: SessionStore } | null;
  readonly timeout: number;
}

/** Every session cache of one proxy process. */
export class TlsSessionCaches {
  readonly #shared = new Map<string, SessionStore>();
  readonly #builtin = new WeakMap<ServerConfig, SessionStore>();
  readonly #sync: SessionSync | null;
  readonly #now: () => number;

  constructor(sync: SessionSync | null = null, now: () => number = Date.now) {
    this.#sync = sync;
    this.#now = now;
  }

  /** Whether handshakes for this (default) server need the session events at all. */
  enabled(server: ServerConfig): boolean {
    return this.#stores(server) !== null;
  }

  #stores(server: ServerConfig): ServerStores | null {
    const ssl = server.settings.ssl;
    if (ssl.sessionCache === 'off' || ssl.sessionCache === 'none' || server.tls === null) return null;
    let builtin: SessionStore | null = null;
    if (typeof ssl.sessionCache === 'number') {
      builtin = this.#builtin.get(server) ?? null;
      if (builtin === null) this.#builtin.set(server, builtin = new SessionStore(ssl.sessionCache));
    }
    const zone = ssl.sessionCacheShared;
    const shared = zone === null ? null : { name: zone.name, size: zone.size, store: this.#zone(zone.name, zone.size) };
    if (builtin === null && shared === null) return null;
    return { builtin, shared, timeout: ssl.sessionTimeout };
  }

  /** The shared store of a zone, made on first use and resized to the zone's current size. */
  #zone(name: string, size: number): SessionStore {
    const capacity = zoneCapacity(size);
    let store = this.#shared.get(name);
    if (store === undefined) this.#shared.set(name, store = new SessionStore(capacity));
    store.capacity = capacity;
    return store;
  }

  /** A new session of a handshake on `server`'s address. */
  store(server: ServerConfig, id: Buffer, data: Buffer): void {
    const s = this.#stores(server);
    if (s === null) return;
    const now = this.#now();
    const key = id.toString('hex');
    const expires = now + s.timeout;
    s.builtin?.set(key, data, expires, now);
    if (s.shared !== null) {
      s.shared.store.set(key, data, expires, now);
      this.#sync?.publish({ zone: s.shared.name, size: s.shared.size, id: key, data: data.toString('base64'), expires });
    }
  }

  /** The first stored session among `ids` (the ClientHello's session id, then its PSK identities). */
  lookup(server: ServerConfig, ids: readonly Buffer[]): Buffer | null {
    const s = this.#stores(server);
    if (s === null) return null;
    const now = this.#now();
    for (const id of ids) {
      const key = id.toString('hex');
      const hit = s.builtin?.get(key, now) ?? s.shared?.store.get(key, now) ?? null;
      if (hit !== null) return hit;
    }
    return null;
  }

  /**
   * After a local miss: the session as another process stored it in the server's shared zone
   * (kept here from then on), or null; null and no promise where there is nobody to ask.
   */
  fetchShared(server: ServerConfig, ids: readonly Buffer[]): Promise<Buffer | null> | null {
    const zone = server.settings.ssl.sessionCacheShared;
    const fetch = this.#sync?.fetch;
    if (zone === null || fetch === undefined || this.#stores(server) === null) return null;
    return fetch.call(this.#sync, zone.name, ids.map((id) => id.toString('hex'))).then((found) => {
      if (found === null || found.expires <= this.#now()) return null;
      this.addShared(found);
      return Buffer.from(found.data, 'base64');
    });
  }

  /** A session another worker stored in a shared cache. */
  addShared(s: SharedSession): void {
    const store = this.#shared.get(s.zone) ?? this.#zone(s.zone, s.size);
    store.set(s.id, Buffer.from(s.data, 'base64'), s.expires, this.#now());
  }
}
