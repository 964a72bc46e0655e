import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config, RebalanceConfig, Settings } from '../config/types.js';
import { monotonicNow } from '../core/clock.js';
import type { ErrorLog } from '../observability/error-log.js';
import { events } from '../observability/events.js';
import type { ProxyTunnel } from '../proxy/tunnel/tunnel.js';
import { peerAvailability, weightNow } from '../upstream/peer.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { CloseBudget } from '../upstream/rebalance/close-budget.js';
import { instanceRate, localPart, planRebalance, wholeCloses, withReturning, withinBudget } from '../upstream/rebalance/plan.js';
import type { ServerLoad } from '../upstream/rebalance/plan.js';
import { LOCAL_TUNNEL_COUNTS } from '../upstream/rebalance/tunnel-counts.js';
import type { TunnelCountSource } from '../upstream/rebalance/tunnel-counts.js';

/**
 * How often the rebalancer compares the counts (ms): often enough that closes come a few at a
 * time (a tick's share of the rate), rarely enough that counting every open tunnel costs nothing.
 */
export const REBALANCE_TICK_MS = 250;

/**
 * How long a closed client is expected back (ms): until a new tunnel of its upstream opens, or
 * this long, it counts as a client on its way to the least loaded server. Reconnecting clients
 * usually wait a second or a few (socket.io: 1 s growing to 5 s, with jitter).
 */
export const RETURN_WAIT_MS = 10_000;

/** What the rebalancer reads from the current config generation (a Runtime). */
export interface RebalanceSource {
  readonly config: Config;
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  errorLog(settings: Settings | null): ErrorLog;
}

/** What it reads from the connection registry: every open tunnel of every generation, oldest first. */
export interface RebalanceRegistry {
  readonly tunnels: ReadonlySet<ProxyTunnel>;
}

/** The tunnels this process could close for one upstream, by server address, oldest first. */
type Candidates = Map<string, ProxyTunnel[]>;

/** Whether a tunnel counts: a WebSocket tunnel not already closing (a closing one's client is about to reconnect). */
function counted(t: ProxyTunnel): boolean {
  return t.ctx.websocket && !t.goingAway;
}

/** Worker processes of this instance that each rebalance their own tunnels (1 without worker_processes). */
function processesOf(config: Config): number {
  if (!cluster.isWorker) return 1;
  return config.workerProcesses === 'auto' ? availableParallelism() : config.workerProcesses;
}

/**
 * `websocket_rebalance` at run time, one per proxy (it outlives reloads, and so do the rate
 * budgets: a reload cannot reset the count of the last second). Every REBALANCE_TICK_MS it counts
 * the open WebSocket tunnels per server of each upstream that asks for it, whichever config
 * generation opened them (a server is its upstream's name and its address), asks the count source
 * for the fleet's view, plans (upstream/rebalance/plan.ts), and closes this process's part of the
 * plan within its budget: the oldest tunnels of the most loaded servers first, each going away at
 * a frame boundary with the configured close code (tunnel.ts), as a drain does.
 *
 * Oldest first rather than at random: a client that was just moved holds one of the newest tunnels,
 * so it is the last to be moved again; and the oldest tunnels are those that have had their session.
 */
export class Rebalancer {
  readonly #registry: RebalanceRegistry;
  readonly #source: () => RebalanceSource;
  readonly #random: () => number;
  #counts: TunnelCountSource;
  readonly #budgets = new Map<string, CloseBudget>();
  /** Upstreams whose last plan wanted tunnels moved (to log the start and the end once). */
  readonly #moving = new Set<string>();
  /** When this process closed each tunnel whose client has not come back yet, oldest first, by upstream. */
  readonly #returning = new Map<string, number[]>();
  /** Tunnels seen by an earlier tick: one not seen before is a client that (re)connected. */
  readonly #seen = new WeakSet<ProxyTunnel>();
  #timer: NodeJS.Timeout | null = null;

  constructor(registry: RebalanceRegistry, source: () => RebalanceSource, counts: TunnelCountSource = LOCAL_TUNNEL_COUNTS, random: () => number = Math.random) {
    this.#registry = registry;
    this.#source = source;
    this.#counts = counts;
    this.#random = random;
  }

  /** Where the counts come from: this process's (the default), or a fleet's sums. */
  setCountSource(counts: TunnelCountSource): void {
    this.#counts = counts;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.tick(monotonicNow()), REBALANCE_TICK_MS);
    this.#timer.unref();
  }

  /** Stops rebalancing (shutdown: tunnels go away by their own rules then). Idempotent. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One round: plan and close for every upstream with websocket_rebalance. */
  tick(now: number): void {
    const rt = this.#source();
    const pools = [...rt.pools.values()].filter((p) => p.config.rebalance);
    if (pools.length === 0) {
      this.#budgets.clear();
      return;
    }
    const byName = new Map<string, Candidates>(pools.map((p) => [p.name, new Map()]));
    const arrived = new Map<string, number>();
    for (const t of this.#registry.tunnels) {
      const name = t.ctx.proxyPass?.upstream ?? '';
      const candidates = byName.get(name);
      const addr = t.ctx.attempts.at(-1)?.addr;
      if (candidates === undefined || addr === undefined || !counted(t)) continue;
      if (!this.#seen.has(t)) {
        this.#seen.add(t);
        arrived.set(name, (arrived.get(name) ?? 0) + 1);
      }
      let list = candidates.get(addr);
      if (list === undefined) candidates.set(addr, (list = []));
      list.push(t);
    }
    const processes = processesOf(rt.config);
    for (const pool of pools) this.#rebalance(rt, pool, byName.get(pool.name)!, arrived.get(pool.name) ?? 0, processes, now);
    for (const name of this.#budgets.keys()) if (!byName.has(name)) this.#budgets.delete(name);
    for (const name of this.#returning.keys()) if (!byName.has(name)) this.#returning.delete(name);
  }

  /** Closed clients still expected back: each new tunnel stands for the oldest; after RETURN_WAIT_MS, none is. */
  #stillReturning(name: string, arrived: number, now: number): number[] {
    let list = this.#returning.get(name);
    if (list === undefined) this.#returning.set(name, (list = []));
    list.splice(0, Math.min(arrived, list.length));
    while (list.length > 0 && list[0]! <= now - RETURN_WAIT_MS) list.shift();
    return list;
  }

  #rebalance(rt: RebalanceSource, pool: UpstreamPool, candidates: Candidates, arrived: number, processes: number, now: number): void {
    const settings = pool.config.rebalance as RebalanceConfig;
    // Backups, and servers that cannot take a client now (down, failed, unhealthy, full), are
    // neither counted nor closed: least_conn would not place a client there, and a full server
    // staying below its share would make the others close tunnels without end.
    const single = pool.peers.length === 1;
    const usable = pool.primary.filter((p) => peerAvailability(p, now, single) === 'up');
    const local = new Map(usable.map((p) => [p.addr, candidates.get(p.addr)?.length ?? 0]));
    const returning = this.#stillReturning(pool.name, arrived, now);
    const view = this.#counts.view(pool.name, local, returning.length);
    const loads: ServerLoad[] = withReturning(
      usable.map((p) => ({ addr: p.addr, weight: weightNow(p, now), count: view.servers.get(p.addr) ?? 0 })), returning.length + (view.returningElsewhere ?? 0));
    const plan = planRebalance(loads, settings.tolerance);
    const part = localPart(plan, view.servers, local);
    const mine = [...part.values()].reduce((a, b) => a + b, 0);
    // With fleet counts every worker process is a member of its own: its part of the plan is
    // already its share, so the rate is not divided among the workers again.
    const rate = instanceRate(settings.maxRate, mine, plan.total, view.instances > 1 ? 1 : processes, view.instances);
    let budget = this.#budgets.get(pool.name);
    if (budget === undefined) this.#budgets.set(pool.name, (budget = new CloseBudget(rate, REBALANCE_TICK_MS, now)));
    else budget.setRate(rate, now);
    const wanted = wholeCloses(part, local, this.#random);
    const wantedTotal = [...wanted.values()].reduce((a, b) => a + b, 0);
    const closes = withinBudget(wanted, budget.take(wantedTotal, now));
    pool.rebalance = {
      maxRate: settings.maxRate, tolerance: settings.tolerance, code: settings.code,
      state: plan.balanced ? 'balanced' : 'rebalancing', pending: plan.total, instances: view.instances, rate,
    };
    this.#note(rt, pool.name, plan.balanced, loads, plan.total);
    for (const [addr, n] of closes) {
      const list = candidates.get(addr) ?? [];
      for (const t of list.slice(0, n)) {
        t.goAway('rebalanced', settings.code);
        returning.push(now);
        if (events.upstreamRebalance.hasSubscribers) events.upstreamRebalance.publish({ ctx: t.ctx, upstream: pool.name, server: addr, code: settings.code });
      }
    }
  }

  /** One notice when an upstream starts rebalancing and one when it is balanced again. */
  #note(rt: RebalanceSource, name: string, balanced: boolean, loads: readonly ServerLoad[], pending: number): void {
    if (balanced === !this.#moving.has(name)) return;
    const log = rt.errorLog(rt.config.http?.settings ?? null);
    if (balanced) {
      this.#moving.delete(name);
      log.log('notice', `upstream "${name}" is balanced again (websocket_rebalance)`);
      return;
    }
    this.#moving.add(name);
    const counts = loads.map((l) => `${l.addr} ${l.count}`).join(', ');
    log.log('notice', `rebalancing upstream "${name}": ${pending} tunnel(s) to move (tunnels per server: ${counts})`);
  }
}
