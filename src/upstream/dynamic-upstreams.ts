/**
 * Upstreams found at run time, for one config generation: the resolvers (one per `resolver` line,
 * so each keeps its own cache as nginx's do), the pools of names a `proxy_pass` with variables
 * resolved to, and the background re-resolution of `server NAME resolve` lines (nginx 1.27.3's
 * zone resolver).
 */
import type { ResolverConfig, SockAddr, UpstreamConfig, UpstreamServer } from '../config/types.js';
import { UPSTREAM_DEFAULTS } from '../config/directives/upstream.js';
import { monotonicNow } from '../core/clock.js';
import type { ErrorLog } from '../observability/error-log.js';
import { NameResolver, RESOLVE_NXDOMAIN } from './name-resolver.js';
import { PeerStates, UpstreamPool } from './pool.js';

/** Pools kept for resolved names at most (a `$host` target may name anything); the oldest go first. */
const POOL_LIMIT = 1000;

/** nginx keeps a name that does not exist out of a group for `valid=` or 10 s before asking again. */
const NXDOMAIN_RETRY_MS = 10_000;

/** The upstream an address list of a resolved name becomes: nginx's round-robin defaults. */
function resolvedUpstream(name: string, addresses: readonly SockAddr[], port: number): UpstreamConfig {
  const loc = { file: '', line: 0 };
  return {
    name,
    servers: addresses.map((a) => ({
      name, address: { host: a.host, port, family: a.family }, weight: UPSTREAM_DEFAULTS.weight,
      maxFails: UPSTREAM_DEFAULTS.maxFails, failTimeout: UPSTREAM_DEFAULTS.failTimeout, backup: false, down: false,
      maxConns: UPSTREAM_DEFAULTS.maxConns, slowStart: UPSTREAM_DEFAULTS.slowStart, loc,
    })),
    keepalive: 0, keepaliveTimeout: UPSTREAM_DEFAULTS.keepaliveTimeout, keepaliveRequests: UPSTREAM_DEFAULTS.keepaliveRequests,
    implicit: true, method: { name: 'round_robin' }, sticky: null, zone: null, healthChecks: [],
    resolver: null, resolverTimeout: 30_000, loc,
  };
}

function sameAddresses(pool: UpstreamPool, addresses: readonly SockAddr[]): boolean {
  const peers = pool.primary;
  if (peers.length !== addresses.length) return false;
  const have = new Set(peers.map((p) => `${p.server.address.host}`));
  return addresses.every((a) => have.has(a.host));
}

export class DynamicUpstreams {
  readonly #states: PeerStates;
  readonly #resolvers = new Map<ResolverConfig, NameResolver>();
  readonly #pools = new Map<string, UpstreamPool>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(states: PeerStates) {
    this.#states = states;
  }

  resolver(config: ResolverConfig): NameResolver {
    let r = this.#resolvers.get(config);
    if (r === undefined) {
      r = new NameResolver(config);
      this.#resolvers.set(config, r);
    }
    return r;
  }

  /**
   * The pool for `name` ("host:port") over these addresses: the same pool while the answer stays
   * the same, so its balancer goes round the addresses request after request and its idle
   * connections are reused.
   */
  poolFor(name: string, addresses: readonly SockAddr[], port: number): UpstreamPool {
    const have = this.#pools.get(name);
    if (have !== undefined && sameAddresses(have, addresses)) return have;
    have?.closeIdle();
    // Live state of its own (nginx keeps none for resolved names: a peer set per request), so
    // that names met once do not stay in the process-wide registry.
    const pool = new UpstreamPool(resolvedUpstream(name, addresses, port), new PeerStates(this.#states.secret));
    this.#pools.delete(name);
    this.#pools.set(name, pool);
    if (this.#pools.size > POOL_LIMIT) {
      const oldest = this.#pools.keys().next().value as string;
      this.#pools.get(oldest)?.closeIdle();
      this.#pools.delete(oldest);
    }
    return pool;
  }

  /**
   * Keeps the `server NAME resolve` lines of `pool` resolved: now, then again when the answer
   * expires (TTL or `valid=`, plus a second as nginx), or after max(resolver_timeout, 1 s) when
   * the name servers fail (the peers stay); a name that no longer exists empties its line.
   * `removed` hears the addresses that left, so that their tunnels can be drained.
   */
  follow(pool: UpstreamPool, log: ErrorLog, removed: (pool: UpstreamPool, addrs: readonly string[]) => void): void {
    const config = pool.config;
    if (config.resolver === null) return;
    const resolver = this.resolver(config.resolver);
    const retryMs = Math.max(config.resolverTimeout, 1000);
    for (const line of pool.resolving) {
      const name = line.resolve as string;
      const run = async (): Promise<void> => {
        if (this.#closed) return;
        const r = await resolver.resolve(name, config.resolverTimeout);
        if (this.#closed) return;
        let next: number;
        if (r.ok) {
          this.#apply(pool, line, r.addresses, removed);
          next = Math.max(0, r.validUntil - monotonicNow()) + 1000;
        } else {
          log.log('error', `${name} could not be resolved (${r.state}: ${r.text})`);
          if (r.state === RESOLVE_NXDOMAIN) {
            this.#apply(pool, line, [], removed);
            next = (config.resolver?.valid ?? NXDOMAIN_RETRY_MS) + 1000;
          } else {
            next = retryMs;
          }
        }
        this.#schedule(run, next);
      };
      this.#schedule(run, 0);
    }
  }

  #apply(pool: UpstreamPool, line: UpstreamServer, addresses: readonly SockAddr[], removed: (pool: UpstreamPool, addrs: readonly string[]) => void): void {
    // Sorted: the same answer in another order changes nothing.
    const sorted = [...addresses].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
    const gone = pool.setResolved(line, sorted);
    if (gone.length > 0) removed(pool, gone);
  }

  #schedule(run: () => Promise<void>, ms: number): void {
    if (this.#closed) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      void run();
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const p of this.#pools.values()) p.close();
  }

  /** Frees idle connections of the resolved pools (the runtime was replaced); requests in flight finish. */
  retire(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const p of this.#pools.values()) p.closeIdle();
  }
}
