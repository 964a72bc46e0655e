import { randomBytes } from 'node:crypto';
import type { SockAddr, UpstreamConfig, UpstreamServer } from '../config/types.js';
import { monotonicNow } from '../core/clock.js';
import { events } from '../observability/events.js';
import { DEFAULT_BALANCER_OPTIONS, makeBalancer } from './balancers/registry.js';
import type { Balancer, BalancerOptions } from './balancers/balancer.js';
import { Peer, PeerState, formatAddr, notePicked, peerAvailable } from './peer.js';
import { StickyRoutes } from './sticky.js';

/**
 * Live per-server state keyed by "upstream|address", and the secret that signs sticky cookies:
 * one registry outlives config reloads, so counters, health and cookies survive them.
 */
export class PeerStates {
  readonly #states = new Map<string, PeerState>();
  readonly secret: Buffer;

  /**
   * @param secret - signs sticky cookie ids; processes that must recognise each other's cookies
   *   (worker processes) pass the same one. @default 32 random bytes
   */
  constructor(secret: Buffer = randomBytes(32)) {
    this.secret = secret;
  }

  /**
   * The fleet's counts (src/fleet): each server's `remote` from "upstream|server" sums; servers
   * missing from `sums` count 0. An empty map is the fall-back to local counts.
   */
  setRemote(sums: ReadonlyMap<string, number>): void {
    for (const [key, s] of this.#states) s.remote = sums.get(key) ?? 0;
  }

  /** Each server's live state by "upstream|server". */
  entries(): IterableIterator<[string, PeerState]> {
    return this.#states.entries();
  }

  get(upstream: string, addr: string): PeerState {
    const key = `${upstream}|${addr}`;
    let s = this.#states.get(key);
    if (!s) {
      s = new PeerState();
      this.#states.set(key, s);
    }
    return s;
  }
}

/**
 * Active health is live state kept only while a check looks after it: when a reload leaves an
 * upstream without any `health_check`, a server they had marked unhealthy comes back (nothing
 * else ever would), ramping up under slow_start, and the change is published like a check's.
 */
/** The tried set a pick context holds between picks. */
const NO_PEERS: ReadonlySet<Peer> = new Set<Peer>();

function releaseFromChecks(upstream: string, peer: Peer): void {
  if (peer.state.healthy) return;
  peer.state.healthy = true;
  peer.state.recoveredAt = monotonicNow();
  if (events.upstreamHealth.hasSubscribers) {
    events.upstreamHealth.publish({ upstream, server: peer.addr, healthy: true, reason: 'no health check' });
  }
}

/**
 * What an upstream client keeps for one pool between requests: idle keep-alive connections, TLS
 * sessions. Closed with the pool.
 */
export interface PoolConnections {
  /** Closes idle connections (reload); connections serving a request finish it. */
  closeIdle(): void;
  /** Closes every idle connection and lets nothing be kept any more (shutdown). */
  close(): void;
}

/** The rebalancing state of an upstream with websocket_rebalance, for /status and the dashboard. */
export interface RebalanceStatus {
  readonly maxRate: number;
  /** A fraction (0.2 = 20%). */
  readonly tolerance: number;
  readonly code: number;
  /** 'rebalancing' while the last plan wanted tunnels moved, else 'balanced'. */
  readonly state: 'balanced' | 'rebalancing';
  /** Tunnels the last plan wanted moved (over the fleet when the counts are a fleet's). */
  readonly pending: number;
  /** Instances whose counts the plan used (1: this process's own). */
  readonly instances: number;
  /** This process's rate of closes now (its share of max_rate), per second. */
  readonly rate: number;
}

export interface PoolOptions {
  readonly balancer?: BalancerOptions;
}

/**
 * One upstream group at run time: its peers (primaries and backups), the balancer over each,
 * sticky routes, and the connections the upstream client keeps for it (with `keepalive`, one
 * cache of idle connections per server).
 */
export class UpstreamPool {
  readonly name: string;
  readonly config: UpstreamConfig;
  primary: readonly Peer[] = [];
  backup: readonly Peer[] = [];
  sticky: StickyRoutes | null = null;
  /** Set by the rebalancer on each of its ticks (server/rebalancer.ts); null without websocket_rebalance. */
  rebalance: RebalanceStatus | null = null;
  readonly #connections = new Map<(pool: UpstreamPool) => PoolConnections, PoolConnections>();
  #closed = false;
  #primary!: Balancer;
  #backup: Balancer | null = null;
  readonly #states: PeerStates;
  readonly #balancerOptions: BalancerOptions;
  /** The servers of `server NAME resolve` lines, by line, as last resolved (none before). */
  readonly #resolved = new Map<UpstreamServer, readonly UpstreamServer[]>();
  /**
   * The context of every pick, refilled for each instead of made per request: a pick is
   * synchronous and no balancer keeps its context past it.
   */
  readonly #pickCtx: { tried: ReadonlySet<Peer>; now: number; key: string } = { tried: NO_PEERS, now: 0, key: '' };

  constructor(config: UpstreamConfig, states: PeerStates, options: PoolOptions = {}) {
    this.name = config.name;
    this.config = config;
    this.#states = states;
    this.#balancerOptions = options.balancer ?? DEFAULT_BALANCER_OPTIONS;
    this.#build();
  }

  /** The `server ... resolve` lines, whose addresses come from {@link setResolved}. */
  get resolving(): readonly UpstreamServer[] {
    return this.config.servers.filter((s) => s.resolve !== undefined);
  }

  /**
   * The addresses a `server NAME resolve` line resolves to now (nginx's zone resolve handler):
   * peers of addresses that stay keep their Peer (balancer weights) and, by address, their live
   * state; new ones join, gone ones leave the balancer. Returns the addresses that left.
   */
  setResolved(line: UpstreamServer, addresses: readonly SockAddr[]): string[] {
    const before = new Set((this.#resolved.get(line) ?? []).map((s) => formatAddr(s.address)));
    if (before.size === addresses.length && this.#resolved.has(line)
      && addresses.every((a) => before.has(formatAddr({ ...a, port: line.address.port })))) return [];
    const servers = addresses.map((a) => ({ ...line, address: { host: a.host, port: line.address.port, family: a.family } }));
    this.#resolved.set(line, servers);
    for (const s of servers) before.delete(formatAddr(s.address));
    this.#build();
    return [...before];
  }

  #build(): void {
    const config = this.config;
    const old = new Map(this.peers.map((p) => [`${p.server.loc.file}:${p.server.loc.line}|${p.addr}`, p]));
    const servers = config.servers.flatMap((s) => (s.resolve === undefined ? [s] : this.#resolved.get(s) ?? []));
    // Each server line is its own peer with its own failures, as in nginx, also where two lines
    // name one address: the second one's state is kept under "addr#2".
    const seen = new Map<string, number>();
    const stateKey = (addr: string): string => {
      const n = (seen.get(addr) ?? 0) + 1;
      seen.set(addr, n);
      return n === 1 ? addr : `${addr}#${n}`;
    };
    const peers = servers.map((s) => {
      const addr = formatAddr(s.address);
      const key = stateKey(addr);
      return old.get(`${s.loc.file}:${s.loc.line}|${addr}`) ?? new Peer(s, this.#states.get(config.name, key));
    });
    if (config.healthChecks.length === 0) for (const p of peers) if (!old.has(`${p.server.loc.file}:${p.server.loc.line}|${p.addr}`)) releaseFromChecks(config.name, p);
    this.primary = peers.filter((p) => !p.server.backup);
    this.backup = peers.filter((p) => p.server.backup);
    const bo = this.#balancerOptions;
    this.#primary = makeBalancer(config.method, this.primary, bo);
    this.#backup = this.backup.length > 0 ? makeBalancer(config.method, this.backup, bo) : null;
    this.sticky = config.sticky ? new StickyRoutes(config.sticky, config.name, peers, config.sticky.secret !== null ? Buffer.from(config.sticky.secret, 'hex') : this.#states.secret) : null;
  }

  /** Every server, primaries first. */
  get peers(): readonly Peer[] {
    return [...(this.primary ?? []), ...(this.backup ?? [])];
  }

  /**
   * The next server for a request: the one its sticky cookie names while that one is available,
   * else the balancer's choice among the primaries, else among the backups (nginx: backups only
   * when no primary can be picked).
   */
  pick(tried: ReadonlySet<Peer>, now: number, key: string, stickyValue?: string, learnt?: string): Peer | null {
    const stuck = this.sticky?.peerFor(stickyValue) ?? (learnt === undefined ? undefined : this.peers.find((p) => p.addr === learnt));
    const ctx = this.#pickCtx;
    ctx.tried = tried;
    ctx.now = now;
    ctx.key = key;
    const peer = stuck && !tried.has(stuck) && peerAvailable(stuck, now, this.primary.length + this.backup.length === 1)
      ? stuck
      : this.#primary.pick(ctx) ?? this.#backup?.pick(ctx) ?? null;
    ctx.tried = NO_PEERS; // not kept alive until the next pick
    if (peer !== null) notePicked(peer, now);
    return peer;
  }

  /**
   * The connections that `make`'s client keeps for this pool, made on first use. One upstream
   * client serves a process (proxy/client/registry.ts), so a pool holds one kind.
   */
  connectionsOf<T extends PoolConnections>(make: (pool: UpstreamPool) => T): T {
    let c = this.#connections.get(make) as T | undefined;
    if (c === undefined) {
      c = make(this);
      this.#connections.set(make, c);
      // A request still finishing on a pool shut down keeps nothing for later.
      if (this.#closed) c.close();
    }
    return c;
  }

  /** Closes cached idle connections only; connections in use finish their request. */
  closeIdle(): void {
    for (const c of this.#connections.values()) c.closeIdle();
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#connections.values()) c.close();
  }
}
