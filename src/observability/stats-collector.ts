/**
 * The live statistics of one proxy (one ProxyServer): it subscribes to the named events and
 * keeps counters, and reads the rest (connection states, open tunnels, upstream state) when a
 * snapshot is taken. Several proxies may run in one process (tests do), so every event is
 * checked against this proxy's connection registry first. Nothing here is on the request path:
 * when the events have no other subscriber, the proxy pays only for these handlers.
 *
 * The ends of requests and tunnels are not subscribed to: the runtime calls {@link
 * ProxyStats.requestEnded} and {@link ProxyStats.tunnelClosed} itself, so that `hasSubscribers`
 * on those two channels says whether anyone outside Sluice reads a context at its end (a tunnel
 * keeps its whole request context for its end only then: RequestContext.compactForTunnel).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import type { Config, ServerConfig } from '../config/types.js';
import { monotonicNow } from '../core/clock.js';
import { SLUICE_VERSION } from '../core/version.js';
import { events } from './events.js';
import type { ConnInfo, RequestContext, UpstreamAttempt } from '../proxy/context/request-context.js';
import type { ProxyTunnel } from '../proxy/tunnel/tunnel.js';
import { peerAvailability } from '../upstream/peer.js';
import { methodLabel } from '../upstream/balancers/registry.js';
import type { UpstreamPool } from '../upstream/pool.js';
import {
  CONNECT_BUCKETS, RATE_KEYS, RATE_WINDOW_SECONDS, RECENT_LIMIT, STATS_SCHEMA, TUNNEL_BUCKETS, dict, emptyRates, emptySeries,
  emptyStates, mergeSnapshots, newHistogram, observe,
} from './stats.js';
import type {
  CacheFigures, ConnectionFigures, ErrorRecord, FleetStats, Histogram, PeerStateName, PeerStats, RateFigures, ReloadFigures, ServerBlockStats, StatsSnapshot,
  UpstreamStats,
} from './stats.js';
import { ReloadHistory } from './reload-history.js';
import { FORWARD_UPSTREAM } from '../proxy/forward/forward-upstream.js';
import { openZones } from '../proxy/cache/cache-zone.js';
import { limitConnFigures, limitReqFigures } from '../limits/limit-figures.js';

/** What the collector reads from the current config generation. */
export interface StatsSource {
  readonly config: Config;
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  /** The fleet member of this process (`fleet`), null without one. */
  readonly fleet?: { stats(): FleetStats } | null;
}

/** What the collector reads from the proxy's connection registry. */
export interface StatsRegistry {
  readonly sockets: ReadonlySet<Socket>;
  readonly tunnels: ReadonlySet<ProxyTunnel>;
  /** Open client connections, tunnels the native addon holds included. */
  readonly open: number;
  /** Tunnels the native addon holds (their client sockets are not in `sockets`). */
  readonly nativeTunnels: number;
  /** Connections the native addon accepted and still reads, [waiting, reading] (counted in `open`). */
  addonHeld?(): readonly [number, number];
  readonly accepted: number;
  readonly handled: number;
  /** True when the connection was accepted by this proxy. */
  owns(conn: ConnInfo): boolean;
  /** The connection's info if a request has been seen on it. */
  peek(socket: Socket): ConnInfo | undefined;
  /** socket.bytesRead when the connection's current request head began. */
  readMark(socket: Socket): number;
}

/** How often rates are sampled and live viewers (SSE) get a new snapshot. @default 1000 */
export const STATS_TICK_MS = 1000;

interface ServerCounters {
  readonly requests: Map<string, number>;
  readonly handshakes: Map<string, number>;
  inFlight: number;
  bytesReceived: number;
  bytesSent: number;
}

interface PeerCounters {
  attempts: number;
  failures: number;
  rebalanceCloses: number;
}

interface UpstreamCounters {
  retries: number;
  tunnelsOpened: number;
  readonly tunnelsClosed: Map<string, number>;
  readonly websocketCloses: Map<string, number>;
  readonly tunnelDuration: Histogram;
  readonly connectTime: Histogram;
  readonly peers: Map<string, PeerCounters>;
}

/** The name of a server block in the statistics: its first server_name, "_" when it has none. */
export function serverLabel(server: ServerConfig | null): string {
  return server === null || server.primaryName === '' ? '_' : server.primaryName;
}

/** Tunnel close reasons without their details ("client error: ECONNRESET" -> "client error"). */
function reasonLabel(reason: string): string {
  const colon = reason.indexOf(':');
  return (colon < 0 ? reason : reason.slice(0, colon)) || 'closed';
}

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

function toDict(map: ReadonlyMap<string, number>): Record<string, number> {
  const out = dict<number>();
  for (const [k, v] of map) out[k] = v;
  return out;
}

/**
 * What the statistics noted on a request (`RequestContext.statsMarks`): a field of the context
 * rather than WeakSet entries, which an open tunnel would keep for its whole life. A context is
 * counted by one proxy's statistics only (the one whose registry owns its connection).
 */
const ROUTED = 1;
const ATTEMPTS_SEEN = 2;

function isHandshake(ctx: RequestContext): boolean {
  if (ctx.websocket) return true;
  const upgrade = ctx.headers.upgrade;
  return typeof upgrade === 'string' && /(^|[\s,])websocket([\s,]|$)/i.test(upgrade);
}

type Listener = (snapshot: StatsSnapshot) => void;

interface Watcher {
  readonly onSnapshot: Listener;
  readonly onEnd: () => void;
}

/** What a worker process learns from the others, for {@link ProxyStats.setGatherer}. */
export interface Gathered {
  /** The other workers' snapshots (those that answered). */
  readonly snapshots: readonly StatsSnapshot[];
  /** The primary's reload figures, which replace the workers' own (null: keep theirs). */
  readonly reloads: ReloadFigures | null;
}

export type SnapshotGatherer = () => Promise<Gathered>;

/**
 * Statistics of one proxy across its reloads. `owner` is the proxy itself: a reload event that
 * names another proxy (`proxy` in its message) is not counted here.
 */
export class ProxyStats {
  readonly #registry: StatsRegistry;
  readonly #source: () => StatsSource;
  readonly #owner: object;
  readonly #startTime = Date.now();
  /** Requests ended per connection: `conn.requests` minus this is what is in flight on it. */
  readonly #ended = new WeakMap<ConnInfo, number>();
  #started = 0;
  #endedUnrouted = 0;
  readonly #servers = new Map<string, ServerCounters>();
  readonly #upstreams = new Map<string, UpstreamCounters>();
  readonly #totals: RateFigures = emptyRates();
  #internalErrors = 0;
  /** The dashboard's event streams: their requests, and the connections of those still open. */
  readonly #viewerRequests = new WeakSet<RequestContext>();
  readonly #viewerConns = new Set<ConnInfo>();
  #viewersServed = 0;
  #viewerBytes = 0;
  #tunnelsOpened = 0;
  #tunnelsClosed = 0;
  readonly #reloads = new ReloadHistory();
  readonly #recentErrors: ErrorRecord[] = [];
  readonly #lastStates = new Map<string, PeerStateName>();
  /** Cumulative rate figures at the end of each epoch second, for the last window. */
  readonly #samples = new Map<number, RateFigures>();
  readonly #watchers = new Set<Watcher>();
  #gatherer: SnapshotGatherer | null = null;
  readonly #timer: NodeJS.Timeout;
  readonly #handlers: ReadonlyArray<readonly [string, (msg: unknown) => void]>;
  #closed = false;

  constructor(registry: StatsRegistry, source: () => StatsSource, owner: object) {
    this.#registry = registry;
    this.#source = source;
    this.#owner = owner;
    this.#handlers = [
      [events.requestStart.name as string, (m) => this.#onStart((m as { ctx: RequestContext }).ctx)],
      [events.tunnelOpen.name as string, (m) => this.#onTunnelOpen((m as { ctx: RequestContext }).ctx)],
      [events.upstreamRebalance.name as string, (m) => this.#onRebalance(m as { ctx: RequestContext; upstream: string; server: string })],
      [events.reload.name as string, (m) => this.#onReload(m as { ok: boolean; file: string; problems: string[]; drained: number; proxy?: object })],
      [events.internalError.name as string, (m) => this.#onInternalError(m as { ctx: RequestContext | null; error: unknown })],
    ];
    for (const [name, fn] of this.#handlers) subscribe(name, fn);
    this.#timer = setInterval(() => this.#tick(), STATS_TICK_MS);
    this.#timer.unref();
  }

  /** Stops counting and ends every live viewer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const [name, fn] of this.#handlers) unsubscribe(name, fn);
    this.endViewers();
  }

  /** Ends every live viewer (a graceful shutdown starts with this); counting goes on. */
  endViewers(): void {
    const watchers = [...this.#watchers];
    this.#watchers.clear();
    for (const w of watchers) w.onEnd();
  }

  /**
   * Live viewers (the dashboard's event stream): `onSnapshot` gets a fresh snapshot (merged with
   * the other workers' when a gatherer is set) every STATS_TICK_MS; `onEnd` is called when the
   * proxy shuts down. The returned function stops the updates.
   */
  watch(onSnapshot: Listener, onEnd: () => void, ctx: RequestContext | null = null): () => void {
    if (this.#closed) {
      onEnd();
      return () => {};
    }
    const w: Watcher = { onSnapshot, onEnd };
    this.#watchers.add(w);
    // The stream is counted apart (`viewers`): watching must not make the proxy look busy.
    if (ctx !== null && this.#registry.owns(ctx.conn) && !this.#viewerRequests.has(ctx)) {
      this.#viewerRequests.add(ctx);
      this.#viewerConns.add(ctx.conn);
      if ((ctx.statsMarks & ROUTED) !== 0) this.#server(serverLabel(ctx.server)).inFlight--;
    }
    return () => {
      this.#watchers.delete(w);
      if (ctx !== null) this.#viewerConns.delete(ctx.conn);
    };
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  /**
   * For worker processes: `gather` returns the snapshots of the other workers (over IPC) and the
   * primary's reload figures, and every status handler then serves `mergeSnapshots([own,
   * ...others])` with those reloads. null = this process only.
   */
  setGatherer(gather: SnapshotGatherer | null): void {
    this.#gatherer = gather;
  }

  /** What the status handlers serve: this process's snapshot, merged with the other workers'. */
  async combinedSnapshot(): Promise<StatsSnapshot> {
    return this.#combine(this.snapshot());
  }

  async #combine(own: StatsSnapshot): Promise<StatsSnapshot> {
    const gather = this.#gatherer;
    if (gather === null) return own;
    const { snapshots, reloads } = await gather();
    const merged = mergeSnapshots([own, ...snapshots]);
    // The primary saw every reload, refused ones included; a worker sees only those it applied.
    if (reloads !== null) merged.reloads = reloads;
    return merged;
  }

  #server(label: string): ServerCounters {
    let s = this.#servers.get(label);
    if (s === undefined) {
      s = { requests: new Map(), handshakes: new Map(), inFlight: 0, bytesReceived: 0, bytesSent: 0 };
      this.#servers.set(label, s);
    }
    return s;
  }

  #upstream(name: string): UpstreamCounters {
    let u = this.#upstreams.get(name);
    if (u === undefined) {
      u = {
        retries: 0, tunnelsOpened: 0, tunnelsClosed: new Map(), websocketCloses: new Map(), peers: new Map(),
        tunnelDuration: newHistogram(TUNNEL_BUCKETS), connectTime: newHistogram(CONNECT_BUCKETS),
      };
      this.#upstreams.set(name, u);
    }
    return u;
  }

  #peer(u: UpstreamCounters, addr: string): PeerCounters {
    let p = u.peers.get(addr);
    if (p === undefined) {
      p = { attempts: 0, failures: 0, rebalanceCloses: 0 };
      u.peers.set(addr, p);
    }
    return p;
  }

  #error(kind: ErrorRecord['kind'], message: string, upstream: string, server: string): void {
    this.#recentErrors.unshift({ time: Date.now(), kind, message, upstream, server, pid: process.pid });
    if (this.#recentErrors.length > RECENT_LIMIT) this.#recentErrors.pop();
  }

  #onStart(ctx: RequestContext): void {
    if (!this.#registry.owns(ctx.conn)) return;
    ctx.statsMarks |= ROUTED;
    this.#started++;
    this.#server(serverLabel(ctx.server)).inFlight++;
  }

  /** A request or a WebSocket session ended (after its access-log line), as `sluice:request:end` says. */
  requestEnded(ctx: RequestContext): void {
    if (this.#closed || !this.#registry.owns(ctx.conn)) return;
    this.#ended.set(ctx.conn, (this.#ended.get(ctx.conn) ?? 0) + 1);
    if (this.#viewerRequests.has(ctx)) {
      this.#viewerConns.delete(ctx.conn);
      this.#viewersServed++;
      this.#viewerBytes += ctx.bytesSent;
      return;
    }
    const server = this.#server(serverLabel(ctx.server));
    if ((ctx.statsMarks & ROUTED) !== 0) server.inFlight--;
    else this.#endedUnrouted++;
    server.bytesReceived += ctx.bytesReceived;
    server.bytesSent += ctx.bytesSent;
    this.#totals.bytesReceived += ctx.bytesReceived;
    this.#totals.bytesSent += ctx.bytesSent;
    const status = String(ctx.status);
    if (isHandshake(ctx)) {
      // A tunnel's 101 was counted when it opened.
      if (ctx.tunnelStartMs === 0) {
        bump(server.handshakes, status);
        this.#totals.handshakes++;
      }
    } else {
      bump(server.requests, status);
      this.#totals.requests++;
    }
    if (ctx.status >= 500) this.#totals.errors++;
    if ((ctx.statsMarks & ATTEMPTS_SEEN) === 0) this.#recordAttempts(ctx);
    if (ctx.status >= 500 && ctx.attempts.length === 0 && ctx.proxyPass !== null) {
      this.#error('proxy', `no live upstreams in upstream "${ctx.proxyPass.upstream}" (${ctx.status})`, ctx.proxyPass.upstream, '');
    }
  }

  #recordAttempts(ctx: RequestContext): void {
    ctx.statsMarks |= ATTEMPTS_SEEN;
    const name = ctx.proxyPass?.upstream;
    if (name === undefined || ctx.attempts.length === 0) return;
    const u = this.#upstream(name);
    u.retries += ctx.attempts.length - 1;
    const last = ctx.attempts.length - 1;
    // A loop, not forEach: no closure per request.
    for (let i = 0; i <= last; i++) {
      const a = ctx.attempts[i] as UpstreamAttempt;
      const p = this.#peer(u, a.addr);
      p.attempts++;
      if (a.connectTime >= 0) observe(u.connectTime, a.connectTime / 1000);
      // Every try but the last failed (the loop moves on only after a failure); the last failed
      // when no response head came (its status is then the 502/504 it maps to).
      const failed = i < last || (a.headerTime < 0 && a.status >= 500);
      if (!failed) continue;
      p.failures++;
      const what = a.headerTime >= 0 ? `answered ${a.status}` : a.status === 504 ? 'timed out (504)' : `failed (${a.status || 'no response'})`;
      this.#error('upstream', `upstream server ${a.addr} of "${name}" ${what}`, name, a.addr);
    }
  }

  #onTunnelOpen(ctx: RequestContext): void {
    if (!this.#registry.owns(ctx.conn)) return;
    // A forward proxy's CONNECT tunnel is no handshake: it counts as a request (200) when it ends.
    if (ctx.method !== 'CONNECT' || ctx.websocket) {
      bump(this.#server(serverLabel(ctx.server)).handshakes, '101');
      this.#totals.handshakes++;
    }
    this.#totals.tunnelsOpened++;
    this.#tunnelsOpened++;
    const name = ctx.proxyPass?.upstream;
    if (name !== undefined) this.#upstream(name).tunnelsOpened++;
    this.#recordAttempts(ctx);
  }

  /** A tunnel closed, as `sluice:tunnel:close` says. */
  tunnelClosed(ctx: RequestContext, reason: string): void {
    if (this.#closed || !this.#registry.owns(ctx.conn)) return;
    this.#tunnelsClosed++;
    this.#totals.tunnelsClosed++;
    const name = ctx.proxyPass?.upstream;
    if (name === undefined) return;
    const u = this.#upstream(name);
    bump(u.tunnelsClosed, reasonLabel(reason));
    if (ctx.websocket) bump(u.websocketCloses, ctx.websocketClose === null ? '1006/none' : `${ctx.websocketClose.code}/${ctx.websocketClose.side}`);
    if (ctx.tunnelStartMs > 0) observe(u.tunnelDuration, Math.max(0, performance.now() - ctx.tunnelStartMs) / 1000);
  }

  #onRebalance(msg: { ctx: RequestContext; upstream: string; server: string }): void {
    if (!this.#registry.owns(msg.ctx.conn)) return;
    this.#peer(this.#upstream(msg.upstream), msg.server).rebalanceCloses++;
  }

  /** A request's error counts where its connection was accepted; one without a request (ctx null) in every proxy of the process. */
  #onInternalError(msg: { ctx: RequestContext | null; error: unknown }): void {
    if (msg.ctx !== null && !this.#registry.owns(msg.ctx.conn)) return;
    this.#internalErrors++;
    const text = msg.error instanceof Error ? `${msg.error.name}: ${msg.error.message}` : String(msg.error);
    this.#error('internal', `unexpected error (answered 500 or closed): ${text}`, msg.ctx?.proxyPass?.upstream ?? '', '');
  }

  #onReload(msg: { ok: boolean; file: string; problems: string[]; drained: number; proxy?: object }): void {
    if (msg.proxy !== undefined && msg.proxy !== this.#owner) return;
    this.#reloads.record({ ok: msg.ok, file: msg.file ?? '', problems: msg.problems ?? [], drained: msg.drained ?? 0 });
  }

  /** Cumulative rate figures now: ended work plus the bytes open tunnels have moved so far. */
  #rateTotals(): RateFigures {
    const t = { ...this.#totals };
    for (const tunnel of this.#registry.tunnels) {
      t.bytesReceived += tunnel.ctx.bytesReceived;
      t.bytesSent += tunnel.ctx.bytesSent;
    }
    return t;
  }

  /**
   * Cumulative figures for each second from `sec - RATE_WINDOW_SECONDS` to `sec` (the last one is
   * `current`): the latest sample at or before each second, zeros before counting began.
   */
  #cumulative(sec: number, current: RateFigures): RateFigures[] {
    const first = sec - RATE_WINDOW_SECONDS;
    let base = emptyRates();
    let baseSec = -Infinity;
    for (const [s, v] of this.#samples) {
      if (s <= first && s > baseSec) {
        base = v;
        baseSec = s;
      }
    }
    const out: RateFigures[] = [];
    let last = base;
    for (let s = first; s < sec; s++) {
      last = this.#samples.get(s) ?? last;
      out.push(last);
    }
    out.push(current);
    return out;
  }

  /**
   * Once a second: the rates' sample (one pass over the open tunnels, for their bytes), the
   * servers' state changes (from the pools, no tunnel visited), and a snapshot only when a live
   * viewer waits for one. An idle proxy holding 100,000 tunnels must not build its whole status
   * every second for nobody: that was three passes over every tunnel and one over every socket.
   */
  #tick(): void {
    const sec = Math.floor(Date.now() / 1000);
    this.#samples.set(sec, this.#rateTotals());
    for (const s of this.#samples.keys()) if (s < sec - RATE_WINDOW_SECONDS - 1) this.#samples.delete(s);
    this.#noteStateChanges();
    if (this.#watchers.size === 0) return;
    const snap = this.snapshot();
    this.#combine(snap).then((combined) => {
      for (const w of this.#watchers) {
        try {
          w.onSnapshot(combined);
        } catch {
          // A viewer that fails is its own problem; the others still get the snapshot.
        }
      }
    }, () => {
      // The other workers did not answer this time; the next tick tries again.
    });
  }

  /**
   * A server of the config whose state changed since the last tick is a recent error. A server a
   * reload removed is not looked at (its tunnels drain: planned, not an error); if a later reload
   * brings it back, its state is compared with the last one it had.
   */
  #noteStateChanges(): void {
    const mono = monotonicNow();
    for (const [name, pool] of this.#source().pools) {
      const peers = pool.peers;
      // One state per address, the last server line's, as the snapshot shows it (two lines may
      // name one address).
      const states = new Map<string, PeerStateName>();
      for (const peer of peers) states.set(peer.addr, peerAvailability(peer, mono, peers.length === 1));
      for (const [addr, state] of states) {
        const key = `${name}|${addr}`;
        const prev = this.#lastStates.get(key);
        this.#lastStates.set(key, state);
        if (prev !== undefined && prev !== state) this.#error('state', `upstream server ${addr} of "${name}" is ${state} (was ${prev})`, name, addr);
      }
    }
  }

  /**
   * nginx's connection figures (stub_status, `$connections_*`): reading while a request head comes
   * in, writing from then until the response (or the tunnel) ends, waiting when idle.
   */
  connections(): ConnectionFigures {
    const registry = this.#registry;
    const connections: ConnectionFigures = {
      // A tunnel the native addon holds has no socket here; nginx counts a tunnel as writing.
      active: Math.max(0, registry.open - this.#viewerConns.size), reading: 0, writing: registry.nativeTunnels, waiting: 0,
      accepted: registry.accepted, handled: registry.handled, requests: this.#started + this.#endedUnrouted,
    };
    // Accepted by the addon, not yet handed to JavaScript: nothing read yet (waiting) or part of a head.
    const [heldWaiting, heldReading] = registry.addonHeld?.() ?? [0, 0];
    connections.waiting += heldWaiting;
    connections.reading += heldReading;
    connections.accepted += heldWaiting + heldReading;
    connections.handled += heldWaiting + heldReading;
    for (const socket of registry.sockets) {
      const info = registry.peek(socket);
      if (info !== undefined && this.#viewerConns.has(info)) continue;
      const inFlight = info === undefined ? 0 : info.requests - (this.#ended.get(info) ?? 0);
      // nginx: reading while a request head is coming in, writing from then until the response
      // (or the tunnel) ends, waiting when idle between requests.
      if (inFlight > 0) connections.writing++;
      else if (socket.bytesRead > registry.readMark(socket)) connections.reading++;
      else connections.waiting++;
    }
    return connections;
  }

  /** The statistics of this proxy now. */
  snapshot(): StatsSnapshot {
    const now = Date.now();
    const mono = monotonicNow();
    const source = this.#source();
    const registry = this.#registry;

    const connections = this.connections();

    const servers = dict<ServerBlockStats>();
    const serverOf = (label: string): ServerBlockStats => {
      let s = servers[label];
      if (s === undefined) {
        const c = this.#servers.get(label);
        s = {
          requests: c ? toDict(c.requests) : dict(), handshakes: c ? toDict(c.handshakes) : dict(),
          inFlight: c ? Math.max(0, c.inFlight) : 0, tunnels: 0,
          bytesReceived: c?.bytesReceived ?? 0, bytesSent: c?.bytesSent ?? 0,
        };
        servers[label] = s;
      }
      return s;
    };
    for (const s of source.config.http?.servers ?? []) serverOf(serverLabel(s));
    for (const label of this.#servers.keys()) serverOf(label);

    const upstreams = dict<UpstreamStats>();
    const upstreamOf = (name: string, pool: UpstreamPool | undefined): UpstreamStats => {
      let u = upstreams[name];
      if (u === undefined) {
        const c = this.#upstreams.get(name);
        u = {
          method: pool ? methodLabel(pool.config.method) : 'removed', implicit: pool?.config.implicit ?? false, peers: dict(),
          retries: c?.retries ?? 0, tunnelsOpened: c?.tunnelsOpened ?? 0,
          tunnelsClosed: c ? toDict(c.tunnelsClosed) : dict(),
          websocketCloses: c ? toDict(c.websocketCloses) : dict(),
          tunnelDuration: c ? copyHist(c.tunnelDuration) : newHistogram(TUNNEL_BUCKETS),
          connectTime: c ? copyHist(c.connectTime) : newHistogram(CONNECT_BUCKETS),
        };
        upstreams[name] = u;
      }
      return u;
    };
    const peerStats = (u: UpstreamStats, name: string, address: string, written: string): PeerStats => {
      let p = u.peers[address];
      if (p === undefined) {
        const c = this.#upstreams.get(name)?.peers.get(address);
        p = {
          address, name: written, backup: false, weight: 0, checked: false, active: 0, tunnels: 0, fails: 0,
          states: emptyStates(), state: 'draining', healthy: 1, attempts: c?.attempts ?? 0, failures: c?.failures ?? 0,
          rebalanceCloses: c?.rebalanceCloses ?? 0,
        };
        u.peers[address] = p;
      }
      return p;
    };
    // The forward proxy's counters outlive its tunnels: no pool in the config lists them.
    if (this.#upstreams.has(FORWARD_UPSTREAM)) upstreamOf(FORWARD_UPSTREAM, undefined).method = FORWARD_UPSTREAM;
    for (const [name, pool] of source.pools) {
      const u = upstreamOf(name, pool);
      const r = pool.config.rebalance ? pool.rebalance : null;
      if (pool.config.rebalance) {
        const c = pool.config.rebalance;
        u.rebalance = {
          maxRate: c.maxRate, tolerance: c.tolerance, code: c.code, rebalancing: r?.state === 'rebalancing' ? 1 : 0,
          pending: r?.pending ?? 0, instances: r?.instances ?? 1, rate: r?.rate ?? 0,
        };
      }
      const peers = pool.peers;
      const checked = pool.config.healthChecks.length > 0;
      for (const peer of peers) {
        const p = peerStats(u, name, peer.addr, peer.server.name);
        const st = peer.state;
        p.backup = peer.server.backup;
        p.weight = peer.server.weight;
        p.checked = checked;
        p.active = st.active;
        p.fails = mono - st.checked <= peer.server.failTimeout ? st.fails : 0;
        p.state = peerAvailability(peer, mono, peers.length === 1);
        p.states = emptyStates();
        p.states[p.state] = 1;
        p.healthy = st.healthy ? 1 : 0;
      }
    }

    let open = 0;
    for (const tunnel of registry.tunnels) {
      open++;
      const ctx = tunnel.ctx;
      const server = serverOf(serverLabel(ctx.server));
      server.tunnels++;
      server.bytesReceived += ctx.bytesReceived;
      server.bytesSent += ctx.bytesSent;
      const name = ctx.proxyPass?.upstream;
      const addr = ctx.attempts.at(-1)?.addr;
      if (name === undefined || addr === undefined) continue;
      const u = upstreamOf(name, source.pools.get(name));
      const p = peerStats(u, name, addr, addr);
      p.tunnels++;
      if (p.state === 'draining') {
        // No longer in the config: its tunnels are all that is left of it.
        p.active = p.tunnels;
        p.states.draining = 1;
      }
    }

    const sec = Math.floor(now / 1000);
    const current = this.#rateTotals();
    const cumulative = this.#cumulative(sec, current);
    const series = emptySeries(sec);
    for (const k of RATE_KEYS) {
      const values = series.values[k];
      for (let i = 0; i < RATE_WINDOW_SECONDS; i++) values[i] = Math.max(0, cumulative[i + 1]![k] - cumulative[i]![k]);
    }
    const seconds = Math.max(1, Math.min(RATE_WINDOW_SECONDS, (now - this.#startTime) / 1000));
    const rates = emptyRates();
    for (const k of RATE_KEYS) rates[k] = Math.max(0, current[k] - cumulative[0]![k]) / seconds;

    return {
      schema: STATS_SCHEMA,
      version: SLUICE_VERSION,
      time: now,
      startTime: this.#startTime,
      workers: 1,
      pids: [process.pid],
      connections,
      tunnels: { open, opened: this.#tunnelsOpened, closed: this.#tunnelsClosed },
      servers,
      upstreams,
      reloads: this.#reloads.figures(),
      recentErrors: this.#recentErrors.map((e) => ({ ...e })),
      internalErrors: this.#internalErrors,
      viewers: { open: this.#viewerConns.size, served: this.#viewersServed, bytesSent: this.#viewerBytes },
      caches: cacheFigures(),
      limitReqs: limitReqFigures(),
      limitConns: limitConnFigures(),
      ...(source.fleet ? { fleet: source.fleet.stats() } : {}),
      rates,
      series,
    };
  }
}

/** The figures of every proxy_cache zone this process opened. */
function cacheFigures(): Record<string, CacheFigures> {
  const out = dict<CacheFigures>();
  for (const z of openZones()) {
    const c = z.counters;
    const had = out[z.config.name];
    // A zone whose path changed in a reload: the old one's counters still count.
    out[z.config.name] = {
      hits: c.hits + (had?.hits ?? 0), misses: c.misses + (had?.misses ?? 0), bytesFromCache: c.bytesFromCache + (had?.bytesFromCache ?? 0),
      evictions: c.evictions + (had?.evictions ?? 0), stores: c.stores + (had?.stores ?? 0), size: z.size, entries: z.entries,
    };
  }
  return out;
}

function copyHist(h: Histogram): Histogram {
  return { bounds: h.bounds, counts: [...h.counts], sum: h.sum, count: h.count };
}
