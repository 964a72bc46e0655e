/**
 * The statistics of one proxy process as a plain, JSON-serialisable snapshot, and the rules for
 * summing snapshots of several worker processes into one. Everything here is data: the live
 * collector (stats-collector.ts) fills snapshots, the Prometheus text (metrics.ts), the JSON
 * status and the dashboard read them, and a master process can merge what its workers send over
 * IPC with {@link mergeSnapshots} (counters and gauges add up, histograms add bucket by bucket,
 * recent lists interleave by time).
 */

/** Bumped when the snapshot shape changes incompatibly; merging refuses mixed schemas. */
export const STATS_SCHEMA = 1;

/** How many reloads and errors a snapshot keeps (the newest). */
export const RECENT_LIMIT = 20;

/** Seconds of per-second history kept for rates. */
export const RATE_WINDOW_SECONDS = 60;

/** Upper bounds (seconds) of the upstream connect time histogram. */
export const CONNECT_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Upper bounds (seconds) of the tunnel duration histogram: from a blip to a day. */
export const TUNNEL_BUCKETS: readonly number[] = [0.1, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400];

/**
 * A histogram with fixed bounds: `counts[i]` observations fell in (bounds[i-1], bounds[i]];
 * the last entry (index bounds.length) counts those above every bound. Not cumulative, so that
 * merging is a plain sum; the Prometheus writer accumulates.
 */
export interface Histogram {
  readonly bounds: readonly number[];
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Where a server of an upstream stands, as a balancer sees it. */
export type PeerStateName = 'up' | 'down' | 'failed' | 'unhealthy' | 'full' | 'draining';

/** Every state, in order of how bad it is (the display state of merged workers is the worst present). */
export const PEER_STATES: readonly PeerStateName[] = ['up', 'full', 'draining', 'failed', 'unhealthy', 'down'];

/** nginx's stub_status figures. */
export interface ConnectionFigures {
  /** Open client connections (all states). */
  active: number;
  reading: number;
  writing: number;
  waiting: number;
  accepted: number;
  handled: number;
  requests: number;
}

/** One `server {}` block, named by its first server_name ("_" when it has none). */
export interface ServerBlockStats {
  /** Ordinary HTTP requests by final status ("200", "404", "499"). */
  requests: Record<string, number>;
  /** WebSocket upgrade requests by status ("101" for tunnels opened, else the refusal). */
  handshakes: Record<string, number>;
  /** Requests being served right now, tunnels included (gauge). */
  inFlight: number;
  /** Tunnels open now (gauge). */
  tunnels: number;
  /** Bytes read from clients and written to clients, tunnelled bytes included (counters). */
  bytesReceived: number;
  bytesSent: number;
}

export interface PeerStats {
  /** The address ("127.0.0.1:8010"), also its key. */
  address: string;
  /** The server as written in the config ("localhost:8010"). */
  name: string;
  backup: boolean;
  weight: number;
  /** True when an active health check probes it. */
  checked: boolean;
  /** Open connections to it, tunnels included (gauge). */
  active: number;
  /** Open tunnels to it (gauge). */
  tunnels: number;
  /** Passive health: failures counted in the current fail_timeout window (gauge). */
  fails: number;
  /** How many processes see it in each state (gauges; 0 or 1 for one process). */
  states: Record<PeerStateName, number>;
  /** The worst state any process sees. */
  state: PeerStateName;
  /** How many processes' active checks call it healthy (gauge; unchecked servers count as healthy). */
  healthy: number;
  /** Attempts sent to it, and those that failed (counters). */
  attempts: number;
  failures: number;
  /** Tunnels websocket_rebalance closed on it (counter). */
  rebalanceCloses: number;
}

/** websocket_rebalance of an upstream: its settings and what its processes are doing. */
export interface RebalanceFigures {
  maxRate: number;
  /** A fraction (0.2 = 20%). */
  tolerance: number;
  code: number;
  /** How many processes' last plan wanted tunnels moved (0: balanced everywhere). */
  rebalancing: number;
  /** Tunnels those plans wanted moved (summed over processes). */
  pending: number;
  /** Live instances whose counts the plans used (1: local counts; the largest any process saw). */
  instances: number;
  /** Closes per second the processes may make now (summed: their shares of max_rate). */
  rate: number;
}

export interface UpstreamStats {
  /** Balancing method ("round_robin", "least_conn", ...). */
  method: string;
  /** Made from `proxy_pass http://host:port` rather than an upstream block. */
  implicit: boolean;
  peers: Record<string, PeerStats>;
  /** Attempts after the first of a request (proxy_next_upstream). */
  retries: number;
  tunnelsOpened: number;
  /** Tunnels closed, by reason ("client closed", "upstream closed", "idle timeout", ...). */
  tunnelsClosed: Record<string, number>;
  /**
   * WebSocket tunnels closed, by their first close frame: "1000/client", "1009/sluice"; "1006/none"
   * when none came (RFC 6455 7.1.5: closed abnormally).
   */
  websocketCloses: Record<string, number>;
  tunnelDuration: Histogram;
  connectTime: Histogram;
  /** websocket_rebalance; absent when the upstream has none. */
  rebalance?: RebalanceFigures;
}

export interface ReloadRecord {
  /** Epoch ms. */
  time: number;
  ok: boolean;
  file: string;
  problems: string[];
  /** Open tunnels whose upstream server the new config no longer has. */
  drained: number;
  pid: number;
}

/**
 * Reloads tried and failed, tunnels they left to removed servers, when the last one was tried
 * (epoch ms, 0 = never) and whether it succeeded (1, also before any reload, or 0).
 */
export interface ReloadFigures {
  ok: number;
  failed: number;
  drained: number;
  lastTime: number;
  lastOk: number;
  /** Newest first, at most RECENT_LIMIT. */
  recent: ReloadRecord[];
}

export interface ErrorRecord {
  /** Epoch ms. */
  time: number;
  /**
   * 'upstream' (a failed attempt), 'state' (a server changed state), 'proxy' (no live upstreams),
   * 'internal' (an unexpected error, a bug: the request got 500 or was closed).
   */
  kind: 'upstream' | 'state' | 'proxy' | 'internal';
  message: string;
  upstream: string;
  server: string;
  pid: number;
}

export interface ViewerFigures {
  open: number;
  served: number;
  bytesSent: number;
}

/** Cumulative totals a rate is computed from. */
export interface RateFigures {
  requests: number;
  handshakes: number;
  errors: number;
  bytesReceived: number;
  bytesSent: number;
  tunnelsOpened: number;
  tunnelsClosed: number;
}

export const RATE_KEYS: readonly (keyof RateFigures)[] = ['requests', 'handshakes', 'errors', 'bytesReceived', 'bytesSent', 'tunnelsOpened', 'tunnelsClosed'];

/**
 * Per-second increases over the last RATE_WINDOW_SECONDS: `series.requests[i]` happened during
 * epoch second `end - (length - 1) + i`. Aligned on epoch seconds so workers merge by addition.
 */
export interface RateSeries {
  /** The last complete epoch second covered. */
  end: number;
  values: Record<keyof RateFigures, number[]>;
}

export interface StatsSnapshot {
  schema: number;
  version: string;
  /** Epoch ms when taken (the newest of merged snapshots). */
  time: number;
  /** Epoch ms when the oldest process started counting. */
  startTime: number;
  /** Processes summed into this snapshot. */
  workers: number;
  pids: number[];
  connections: ConnectionFigures;
  tunnels: { open: number; opened: number; closed: number };
  servers: Record<string, ServerBlockStats>;
  upstreams: Record<string, UpstreamStats>;
  reloads: ReloadFigures;
  recentErrors: ErrorRecord[];
  /** Unexpected errors (bugs) caught by the safety net since start: each ended one request, or nothing. */
  internalErrors: number;
  /**
   * The dashboard's own event streams, counted apart from the proxied traffic (they are in no
   * other figure, so an idle proxy watched by a dashboard looks idle): open now, ended, and the
   * bytes the ended ones sent.
   */
  viewers: ViewerFigures;
  /** proxy_cache zones by keys_zone name (absent from snapshots of older workers). */
  caches?: Record<string, CacheFigures>;
  /** limit_req and limit_conn zones by name: what each decided (absent from older workers' snapshots). */
  limitReqs?: Record<string, LimitReqFigures>;
  limitConns?: Record<string, LimitConnFigures>;
  /** The fleet as this process last read it from Redis (absent without `fleet`). */
  fleet?: FleetStats;
  /** Per-second averages over the window (what the dashboard calls "rates over the last minute"). */
  rates: RateFigures;
  series: RateSeries;
}

/** One fleet member as its record in Redis says (src/fleet/member-record.ts). */
export interface FleetMemberStats {
  /** "NAME/PID". */
  id: string;
  name: string;
  pid: number;
  host: string;
  /** Epoch ms: when it joined, when it last wrote its record. */
  started: number;
  written: number;
  /** Tunnels and client connections open on it. */
  tunnels: number;
  connections: number;
  /** Its view of the backends: upstream -> server -> [open connections, state]. */
  upstreams: Record<string, Record<string, readonly [number, string]>>;
}

/** The fleet (`fleet` directive) as one process sees it. */
export interface FleetStats {
  /** The Redis URL, password masked. */
  url: string;
  /** This instance's name, and this process's member id. */
  name: string;
  self: string;
  /** Whether Redis answered this process's last round trip. */
  redisUp: boolean;
  /** Epoch ms of the last change of redisUp; the error that made it down (null while up). */
  since: number;
  error: string | null;
  /** Epoch ms of the last successful read (0: never). */
  readAt: number;
  /** The live members (empty while Redis is down), by id. */
  members: FleetMemberStats[];
  /**
   * `limit_*_zone ... fleet`: the zones counting on this instance only since Redis failed them,
   * and how many requests and tunnels such a zone decided locally (src/limits/fleet-store.ts).
   */
  limits?: { local: string[]; fallbacks: number };
}

/**
 * Worker processes each read the same fleet: the freshest read stands, and Redis counts as up
 * when any worker reaches it (each one's own state is in its member record).
 */
function mergeFleet(snapshots: readonly StatsSnapshot[]): FleetStats | undefined {
  let best: FleetStats | undefined;
  for (const s of snapshots) if (s.fleet !== undefined && (best === undefined || s.fleet.readAt > best.readAt)) best = s.fleet;
  if (best === undefined) return undefined;
  const limits = snapshots.flatMap((s) => (s.fleet?.limits === undefined ? [] : [s.fleet.limits]));
  return {
    ...best,
    redisUp: snapshots.some((s) => s.fleet?.redisUp === true),
    ...(limits.length === 0 ? {} : { limits: { local: [...new Set(limits.flatMap((l) => l.local))].sort(), fallbacks: limits.reduce((n, l) => n + l.fallbacks, 0) } }),
  };
}

/** One limit_req zone's outcomes, as nginx Plus's API counts them ($limit_req_status, lower case). */
export interface LimitReqFigures {
  passed: number;
  delayed: number;
  rejected: number;
  delayed_dry_run: number;
  rejected_dry_run: number;
}

/** One limit_conn zone's outcomes ($limit_conn_status, lower case). */
export interface LimitConnFigures {
  passed: number;
  rejected: number;
  rejected_dry_run: number;
}

/** One proxy_cache zone's figures. */
export interface CacheFigures {
  hits: number;
  misses: number;
  /** Body bytes sent from cache entries. */
  bytesFromCache: number;
  /** Entries the manager removed (inactive, max_size, min_free). */
  evictions: number;
  /** Entries written. */
  stores: number;
  /** Bytes on disk and entries, as the process's index knows them. */
  size: number;
  entries: number;
}

/**
 * Workers' cache figures: counters add up; size and entries are one shared directory seen by
 * each, so the largest view (the manager's worker re-reads the whole directory) stands.
 */
function mergeCaches(snapshots: readonly StatsSnapshot[]): Record<string, CacheFigures> {
  const out = dict<CacheFigures>();
  for (const s of snapshots) {
    for (const [name, c] of Object.entries(s.caches ?? {})) {
      const mine = out[name];
      if (mine === undefined) {
        out[name] = { ...c };
        continue;
      }
      mine.hits += c.hits;
      mine.misses += c.misses;
      mine.bytesFromCache += c.bytesFromCache;
      mine.evictions += c.evictions;
      mine.stores += c.stores;
      mine.size = Math.max(mine.size, c.size);
      mine.entries = Math.max(mine.entries, c.entries);
    }
  }
  return out;
}

/** Counters by zone added up over workers. */
function sumByZone<F extends object>(all: readonly Readonly<Record<string, F>>[]): Record<string, F> {
  const out = dict<F>();
  for (const figures of all) {
    for (const [zone, f] of Object.entries(figures)) {
      const mine = out[zone] as Record<string, number> | undefined;
      if (mine === undefined) out[zone] = { ...f };
      else for (const [k, n] of Object.entries(f as Record<string, number>)) mine[k] = (mine[k] ?? 0) + n;
    }
  }
  return out;
}

/** A record with no prototype, so that names such as "__proto__" are ordinary keys. */
export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

export function newHistogram(bounds: readonly number[]): Histogram {
  return { bounds, counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 };
}

export function observe(h: Histogram, value: number): void {
  let i = 0;
  while (i < h.bounds.length && value > h.bounds[i]!) i++;
  h.counts[i]!++;
  h.sum += value;
  h.count++;
}

export function emptyStates(): Record<PeerStateName, number> {
  return { up: 0, down: 0, failed: 0, unhealthy: 0, full: 0, draining: 0 };
}

/** The worst state with a non-zero count ('up' when none). */
export function worstState(states: Record<PeerStateName, number>): PeerStateName {
  let worst: PeerStateName = 'up';
  for (const s of PEER_STATES) if (states[s] > 0) worst = s;
  return worst;
}

export function emptyRates(): RateFigures {
  return { requests: 0, handshakes: 0, errors: 0, bytesReceived: 0, bytesSent: 0, tunnelsOpened: 0, tunnelsClosed: 0 };
}

export function emptySeries(end: number): RateSeries {
  const values = {} as Record<keyof RateFigures, number[]>;
  for (const k of RATE_KEYS) values[k] = new Array<number>(RATE_WINDOW_SECONDS).fill(0);
  return { end, values };
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const k of Object.keys(from)) into[k] = (into[k] ?? 0) + from[k]!;
}

function copyCounts(from: Record<string, number>): Record<string, number> {
  const out = dict<number>();
  addCounts(out, from);
  return out;
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function addHistogram(into: Histogram, from: Histogram): void {
  if (!sameBounds(into.bounds, from.bounds)) {
    throw new Error('cannot merge histograms with different bucket bounds (workers of different Sluice versions?)');
  }
  for (let i = 0; i < into.counts.length; i++) into.counts[i]! += from.counts[i] ?? 0;
  into.sum += from.sum;
  into.count += from.count;
}

function copyHistogram(h: Histogram): Histogram {
  return { bounds: [...h.bounds], counts: [...h.counts], sum: h.sum, count: h.count };
}

function copyPeer(p: PeerStats): PeerStats {
  return { ...p, states: { ...p.states } };
}

function mergePeer(into: PeerStats, from: PeerStats): void {
  into.active += from.active;
  into.tunnels += from.tunnels;
  into.fails += from.fails;
  for (const s of PEER_STATES) into.states[s] += from.states[s] ?? 0;
  into.state = worstState(into.states);
  into.healthy += from.healthy;
  into.attempts += from.attempts;
  into.failures += from.failures;
  into.rebalanceCloses = (into.rebalanceCloses ?? 0) + (from.rebalanceCloses ?? 0);
  into.checked ||= from.checked;
}

function copyUpstream(u: UpstreamStats): UpstreamStats {
  const peers = dict<PeerStats>();
  for (const [k, p] of Object.entries(u.peers)) peers[k] = copyPeer(p);
  return {
    ...u, peers, tunnelsClosed: copyCounts(u.tunnelsClosed), websocketCloses: copyCounts(u.websocketCloses),
    tunnelDuration: copyHistogram(u.tunnelDuration), connectTime: copyHistogram(u.connectTime),
    ...(u.rebalance === undefined ? {} : { rebalance: { ...u.rebalance } }),
  };
}

function mergeUpstream(into: UpstreamStats, from: UpstreamStats): void {
  for (const [k, p] of Object.entries(from.peers)) {
    const mine = into.peers[k];
    if (mine === undefined) into.peers[k] = copyPeer(p);
    else mergePeer(mine, p);
  }
  into.retries += from.retries;
  into.tunnelsOpened += from.tunnelsOpened;
  addCounts(into.tunnelsClosed, from.tunnelsClosed);
  addCounts(into.websocketCloses, from.websocketCloses);
  addHistogram(into.tunnelDuration, from.tunnelDuration);
  addHistogram(into.connectTime, from.connectTime);
  const r = from.rebalance;
  if (r === undefined) return;
  if (into.rebalance === undefined) {
    into.rebalance = { ...r };
    return;
  }
  into.rebalance.rebalancing += r.rebalancing;
  into.rebalance.pending += r.pending;
  into.rebalance.rate += r.rate;
  into.rebalance.instances = Math.max(into.rebalance.instances, r.instances);
}

function copyServer(s: ServerBlockStats): ServerBlockStats {
  return { ...s, requests: copyCounts(s.requests), handshakes: copyCounts(s.handshakes) };
}

function mergeServer(into: ServerBlockStats, from: ServerBlockStats): void {
  addCounts(into.requests, from.requests);
  addCounts(into.handshakes, from.handshakes);
  into.inFlight += from.inFlight;
  into.tunnels += from.tunnels;
  into.bytesReceived += from.bytesReceived;
  into.bytesSent += from.bytesSent;
}

/** Adds per-second series that may end at different seconds (the result ends at the latest). */
function mergeSeries(list: readonly RateSeries[]): RateSeries {
  const end = Math.max(...list.map((s) => s.end));
  const out = emptySeries(end);
  for (const s of list) {
    for (const k of RATE_KEYS) {
      const values = s.values[k];
      const first = s.end - values.length + 1;
      for (let i = 0; i < values.length; i++) {
        const j = first + i - (end - RATE_WINDOW_SECONDS + 1);
        if (j >= 0 && j < RATE_WINDOW_SECONDS) out.values[k][j]! += values[i]!;
      }
    }
  }
  return out;
}

/** Reload records of one reload seen by several workers lie this close together (ms). */
export const SAME_RELOAD_MS = 5000;

/**
 * The newest reload records, each reload once: records of other processes with the same result,
 * file and problems within SAME_RELOAD_MS of a kept one are folded into it (drained tunnels add).
 */
function sameReloadsOnce(records: readonly ReloadRecord[]): ReloadRecord[] {
  const kept: ReloadRecord[] = [];
  const pids = new Map<ReloadRecord, Set<number>>();
  for (const r of [...records].sort((a, b) => b.time - a.time)) {
    const key = JSON.stringify([r.ok, r.file, r.problems]);
    const same = kept.find((k) => JSON.stringify([k.ok, k.file, k.problems]) === key
      && Math.abs(k.time - r.time) <= SAME_RELOAD_MS && !pids.get(k)!.has(r.pid));
    if (same !== undefined) {
      same.drained += r.drained;
      pids.get(same)!.add(r.pid);
      continue;
    }
    if (kept.length === RECENT_LIMIT) continue;
    const copy = { ...r, problems: [...r.problems] };
    kept.push(copy);
    pids.set(copy, new Set([r.pid]));
  }
  return kept;
}

/**
 * Each worker notes the state changes of the upstream servers it sees: the same change seen by
 * several workers within SAME_RELOAD_MS (an active health check fails in each) is listed once.
 */
function stateChangesOnce(records: ErrorRecord[]): ErrorRecord[] {
  return records.filter((r, i) => r.kind !== 'state'
    || !records.slice(0, i).some((k) => k.kind === 'state' && k.message === r.message && k.pid !== r.pid && Math.abs(k.time - r.time) <= SAME_RELOAD_MS));
}

function newest<T extends { time: number }>(lists: readonly T[][]): T[] {
  return lists.flat().sort((a, b) => b.time - a.time).slice(0, RECENT_LIMIT).map((r) => ({ ...r }));
}

/**
 * Sums the snapshots of several processes (worker processes of one Sluice) into one: counters
 * and gauges add up (open connections, tunnels, requests by status, bytes), histograms add
 * bucket by bucket, a server's state counts how many processes see it so, `startTime` is the
 * earliest, `time` the latest, recent errors interleave newest first. Reloads, which every
 * worker applies, count once: the largest count any worker saw, the latest result, each reload
 * listed once (with the drained tunnels of every worker added). The inputs are not modified; one
 * snapshot gives a copy of itself.
 */
export function mergeSnapshots(snapshots: readonly StatsSnapshot[]): StatsSnapshot {
  const first = snapshots[0];
  if (first === undefined) throw new Error('mergeSnapshots needs at least one snapshot');
  for (const s of snapshots) {
    if (s.schema !== STATS_SCHEMA) throw new Error(`cannot merge a stats snapshot of schema ${s.schema} (expected ${STATS_SCHEMA})`);
  }
  const connections: ConnectionFigures = { active: 0, reading: 0, writing: 0, waiting: 0, accepted: 0, handled: 0, requests: 0 };
  const tunnels = { open: 0, opened: 0, closed: 0 };
  const servers = dict<ServerBlockStats>();
  const upstreams = dict<UpstreamStats>();
  const reloads: ReloadFigures = { ok: 0, failed: 0, drained: 0, lastTime: 0, lastOk: 0, recent: [] };
  const rates = emptyRates();
  for (const s of snapshots) {
    for (const k of Object.keys(connections) as (keyof ConnectionFigures)[]) connections[k] += s.connections[k];
    tunnels.open += s.tunnels.open;
    tunnels.opened += s.tunnels.opened;
    tunnels.closed += s.tunnels.closed;
    for (const [name, srv] of Object.entries(s.servers)) {
      const mine = servers[name];
      if (mine === undefined) servers[name] = copyServer(srv);
      else mergeServer(mine, srv);
    }
    for (const [name, u] of Object.entries(s.upstreams)) {
      const mine = upstreams[name];
      if (mine === undefined) upstreams[name] = copyUpstream(u);
      else mergeUpstream(mine, u);
    }
    // Every worker applies each reload: count it once (a worker started later saw fewer), but
    // each worker drains its own tunnels.
    reloads.ok = Math.max(reloads.ok, s.reloads.ok);
    reloads.failed = Math.max(reloads.failed, s.reloads.failed);
    reloads.drained += s.reloads.drained;
    if (s.reloads.lastTime >= reloads.lastTime) {
      reloads.lastTime = s.reloads.lastTime;
      reloads.lastOk = s.reloads.lastOk;
    }
    for (const k of RATE_KEYS) rates[k] += s.rates[k];
  }
  if (reloads.lastTime === 0) reloads.lastOk = Math.min(...snapshots.map((s) => s.reloads.lastOk));
  reloads.recent = sameReloadsOnce(snapshots.flatMap((s) => s.reloads.recent));
  return {
    schema: STATS_SCHEMA,
    version: first.version,
    time: Math.max(...snapshots.map((s) => s.time)),
    startTime: Math.min(...snapshots.map((s) => s.startTime)),
    workers: snapshots.reduce((n, s) => n + s.workers, 0),
    pids: snapshots.flatMap((s) => s.pids),
    connections,
    tunnels,
    servers,
    upstreams,
    reloads,
    recentErrors: stateChangesOnce(newest(snapshots.map((s) => s.recentErrors))),
    internalErrors: snapshots.reduce((n, s) => n + s.internalErrors, 0),
    viewers: {
      open: snapshots.reduce((n, s) => n + s.viewers.open, 0),
      served: snapshots.reduce((n, s) => n + s.viewers.served, 0),
      bytesSent: snapshots.reduce((n, s) => n + s.viewers.bytesSent, 0),
    },
    ...(snapshots.some((s) => s.caches !== undefined) ? { caches: mergeCaches(snapshots) } : {}),
    ...(snapshots.some((s) => s.limitReqs !== undefined) ? { limitReqs: sumByZone(snapshots.map((s) => s.limitReqs ?? {})) } : {}),
    ...(snapshots.some((s) => s.limitConns !== undefined) ? { limitConns: sumByZone(snapshots.map((s) => s.limitConns ?? {})) } : {}),
    ...(snapshots.some((s) => s.fleet !== undefined) ? { fleet: mergeFleet(snapshots)! } : {}),
    rates,
    series: mergeSeries(snapshots.map((s) => s.series)),
  };
}
