/**
 * Run-time name resolution with the configured `resolver` (nginx's ngx_resolver): UDP queries to
 * those name servers only (never the system resolver or /etc/hosts), A and AAAA as `ipv4=`/`ipv6=`
 * say, answers cached for their TTL or `valid=`, one query in flight per name shared by every
 * request that waits for it, failures not cached (nginx drops a failed node), and each answer
 * handed out rotated so that requests spread over the addresses.
 */
import { Resolver } from 'node:dns';
import type { ResolverConfig, SockAddr } from '../config/types.js';
import { monotonicNow } from '../core/clock.js';
import { formatHostPort } from '../config/address.js';

/** nginx's resolver states (ngx_resolver.h) and their ngx_resolver_strerror texts. */
export const RESOLVE_FORMERR = 1;
export const RESOLVE_SERVFAIL = 2;
export const RESOLVE_NXDOMAIN = 3;
export const RESOLVE_NOTIMP = 4;
export const RESOLVE_REFUSED = 5;
/** NGX_ETIMEDOUT on Linux. */
export const RESOLVE_TIMEDOUT = 110;

const STATE_TEXT: ReadonlyMap<number, string> = new Map([
  [RESOLVE_FORMERR, 'Format error'], [RESOLVE_SERVFAIL, 'Server failure'], [RESOLVE_NXDOMAIN, 'Host not found'],
  [RESOLVE_NOTIMP, 'Unimplemented'], [RESOLVE_REFUSED, 'Operation refused'], [RESOLVE_TIMEDOUT, 'Operation timed out'],
]);

/** A name that did not resolve: nginx's state and its text, for "NAME could not be resolved (3: Host not found)". */
export interface ResolveFailure {
  readonly ok: false;
  readonly state: number;
  readonly text: string;
}

export interface ResolvedName {
  readonly ok: true;
  /** Addresses with port 0, rotated for this caller. */
  readonly addresses: readonly SockAddr[];
  /** When the answer expires (monotonic ms). */
  readonly validUntil: number;
}

export type ResolveResult = ResolvedName | ResolveFailure;

function failure(state: number): ResolveFailure {
  return { ok: false, state, text: STATE_TEXT.get(state) ?? 'Unknown error' };
}

/** c-ares error codes as nginx's states; anything else (a refused or unreachable server) is a time-out, as nginx sees it. */
function stateOf(err: unknown): number {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOTFOUND':
    case 'ENODATA':
      // nginx: an answer without records counts as NXDOMAIN (ngx_resolver_process_a).
      return RESOLVE_NXDOMAIN;
    case 'ESERVFAIL': return RESOLVE_SERVFAIL;
    case 'EFORMERR': return RESOLVE_FORMERR;
    case 'ENOTIMP': return RESOLVE_NOTIMP;
    case 'EREFUSED': return RESOLVE_REFUSED;
    default: return RESOLVE_TIMEDOUT;
  }
}

interface CacheEntry {
  readonly addresses: readonly SockAddr[];
  readonly validUntil: number;
  /** Where the next caller's rotation starts. */
  next: number;
}

/** Names kept in the cache at most; the oldest go first (a `$host` target may name anything). */
const CACHE_LIMIT = 1000;

type Query = (name: string, rrtype: 'A' | 'AAAA', timeoutMs: number) => Promise<{ addresses: SockAddr[]; ttl: number }>;

export class NameResolver {
  readonly config: ResolverConfig;
  readonly #servers: string[];
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inFlight = new Map<string, Promise<ResolveResult>>();

  constructor(config: ResolverConfig) {
    this.config = config;
    this.#servers = config.servers.map((s) => formatHostPort(s.host, s.port));
  }

  /**
   * The addresses of `name` (lower-cased by the caller), from the cache while valid, else from
   * the name servers within `timeoutMs` (`resolver_timeout`).
   */
  resolve(name: string, timeoutMs: number): Promise<ResolveResult> | ResolveResult {
    const now = monotonicNow();
    const hit = this.#cache.get(name);
    if (hit !== undefined && hit.validUntil > now) return rotated(hit);
    const pending = this.#inFlight.get(name);
    if (pending !== undefined) return pending.then((r) => (r.ok ? this.#rotatedFor(name, r) : r));
    const p = this.#lookup(name, timeoutMs).finally(() => this.#inFlight.delete(name));
    this.#inFlight.set(name, p);
    return p;
  }

  #rotatedFor(name: string, r: ResolvedName): ResolveResult {
    const e = this.#cache.get(name);
    return e === undefined ? r : rotated(e);
  }

  async #lookup(name: string, timeoutMs: number): Promise<ResolveResult> {
    const kinds: ('A' | 'AAAA')[] = [];
    if (this.config.ipv4) kinds.push('A');
    if (this.config.ipv6) kinds.push('AAAA');
    const results = await Promise.allSettled(kinds.map((k) => this.#query(name, k, timeoutMs)));
    const addresses: SockAddr[] = [];
    let ttl = Number.POSITIVE_INFINITY;
    let firstError: unknown = null;
    for (const r of results) {
      if (r.status === 'fulfilled') {
        addresses.push(...r.value.addresses);
        if (r.value.addresses.length > 0) ttl = Math.min(ttl, r.value.ttl);
      } else {
        firstError ??= r.reason;
      }
    }
    if (addresses.length === 0) return failure(firstError === null ? RESOLVE_NXDOMAIN : stateOf(firstError));
    const validFor = this.config.valid ?? ttl * 1000;
    const entry: CacheEntry = { addresses, validUntil: monotonicNow() + validFor, next: 0 };
    this.#cache.delete(name);
    this.#cache.set(name, entry);
    if (this.#cache.size > CACHE_LIMIT) this.#cache.delete(this.#cache.keys().next().value as string);
    return rotated(entry);
  }

  /**
   * One query type to the name servers. A channel per query: c-ares keeps its own answer cache
   * per channel, which would outlive `valid=`; this cache is the only one.
   */
  readonly #query: Query = (name, rrtype, timeoutMs) => new Promise((resolve, reject) => {
    const r = new Resolver({ timeout: Math.max(1, timeoutMs), tries: 1 });
    r.setServers(this.#servers);
    const timer = setTimeout(() => {
      r.cancel();
      reject(Object.assign(new Error('timed out'), { code: 'ETIMEOUT' }));
    }, Math.max(1, timeoutMs));
    const done = (err: Error | null, records: { address: string; ttl: number }[]): void => {
      clearTimeout(timer);
      if (err) {
        reject(err);
        return;
      }
      const family = rrtype === 'AAAA' ? 6 : 4;
      resolve({
        addresses: records.map((a) => ({ host: a.address, port: 0, family })),
        ttl: records.reduce((m, a) => Math.min(m, a.ttl), Number.POSITIVE_INFINITY),
      });
    };
    if (rrtype === 'A') r.resolve4(name, { ttl: true }, done);
    else r.resolve6(name, { ttl: true }, done);
  });
}

function rotated(e: CacheEntry): ResolvedName {
  const n = e.addresses.length;
  const start = e.next % n;
  e.next = (start + 1) % n;
  const addresses = start === 0 ? e.addresses : [...e.addresses.slice(start), ...e.addresses.slice(0, start)];
  return { ok: true, addresses, validUntil: e.validUntil };
}
