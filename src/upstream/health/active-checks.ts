import type { HealthCheckConfig, MatchConfig } from '../../config/types.js';
import { monotonicNow } from '../../core/clock.js';
import type { ErrorLog } from '../../observability/error-log.js';
import { events } from '../../observability/events.js';
import { timerDelay } from '../../core/timers.js';
import type { Peer } from '../peer.js';
import type { UpstreamPool } from '../pool.js';
import { httpProbe, tcpProbe, websocketProbe } from './probes.js';
import type { ProbeVerdict } from './probes.js';

interface PeerCheckState {
  fails: number;
  passes: number;
  healthy: boolean;
}

/**
 * The active health checks of one upstream (nginx Plus `health_check`): every `interval` (plus up
 * to `jitter`) each server is probed; `fails` consecutive failures make it unhealthy (skipped by
 * every balancer), `passes` consecutive successes bring it back (slow_start then ramps it up).
 * With several checks a server is healthy only while every check says so. Servers start healthy.
 * A probe times out after the check's interval. Changes are logged at `warn` and published on
 * `sluice:upstream:health`.
 */
export class ActiveHealthChecks {
  readonly #pool: UpstreamPool;
  readonly #checks: readonly HealthCheckConfig[];
  readonly #matches: ReadonlyMap<string, MatchConfig>;
  readonly #log: ErrorLog;
  readonly #random: () => number;
  readonly #state = new Map<HealthCheckConfig, Map<Peer, PeerCheckState>>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(pool: UpstreamPool, matches: ReadonlyMap<string, MatchConfig>, log: ErrorLog, random: () => number = Math.random) {
    this.#pool = pool;
    this.#checks = pool.config.healthChecks;
    this.#matches = matches;
    this.#log = log;
    this.#random = random;
    for (const c of this.#checks) {
      const m = new Map<Peer, PeerCheckState>();
      for (const p of pool.peers) m.set(p, { fails: 0, passes: 0, healthy: p.state.healthy });
      this.#state.set(c, m);
    }
  }

  start(): void {
    for (const c of this.#checks) this.#schedule(c, 0);
  }

  #schedule(check: HealthCheckConfig, delay: number): void {
    if (this.#closed) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      void this.runOnce(check).then(() => this.#schedule(check, check.interval + Math.floor(this.#random() * check.jitter)));
    }, timerDelay(delay));
    t.unref();
    this.#timers.add(t);
  }

  /** Probes every server once with one check (exported for tests and for `start`). */
  async runOnce(check: HealthCheckConfig): Promise<void> {
    const match = check.match ? (this.#matches.get(check.match) ?? null) : null;
    const timeout = timerDelay(Math.max(1, check.interval));
    await Promise.all(this.#pool.peers.map(async (peer) => {
      const verdict = await this.#probe(peer, check, match, timeout);
      if (!this.#closed) this.#record(check, peer, verdict);
    }));
  }

  #probe(peer: Peer, check: HealthCheckConfig, match: MatchConfig | null, timeout: number): Promise<ProbeVerdict> {
    switch (check.type) {
      case 'tcp': return tcpProbe(peer, check, timeout);
      case 'websocket': return websocketProbe(peer, check, match, timeout);
      case 'http': return httpProbe(peer, check, match, timeout);
    }
  }

  #record(check: HealthCheckConfig, peer: Peer, verdict: ProbeVerdict): void {
    const states = this.#state.get(check) as Map<Peer, PeerCheckState>;
    let s = states.get(peer);
    if (s === undefined) {
      // A peer that joined after start (a `server ... resolve` address).
      s = { fails: 0, passes: 0, healthy: peer.state.healthy };
      states.set(peer, s);
    }
    const was = s.healthy;
    if (verdict === null) {
      s.fails = 0;
      s.passes++;
      if (!s.healthy && s.passes >= check.passes) s.healthy = true;
    } else {
      s.passes = 0;
      s.fails++;
      if (s.healthy && s.fails >= check.fails) s.healthy = false;
    }
    // A failed probe of a check that holds the server down also re-asserts it, in case something
    // else marked the server healthy meanwhile (a reload dropping the checks, then rolled back).
    if (was === s.healthy && (verdict === null || s.healthy)) return;
    const healthy = [...this.#state.values()].every((m) => m.get(peer)?.healthy !== false);
    if (healthy === peer.state.healthy) return;
    peer.state.healthy = healthy;
    if (healthy) peer.state.recoveredAt = monotonicNow();
    // A tcp check sends no request, so it has no URI to name.
    const probe = check.type === 'tcp' ? 'tcp' : `${check.type} ${check.uri}`;
    const what = `health check "${probe}" of peer ${peer.addr} in upstream "${this.#pool.name}"`;
    this.#log.log('warn', healthy ? `peer is healthy, ${what}` : `peer is unhealthy (${verdict}), ${what}`);
    if (events.upstreamHealth.hasSubscribers) {
      events.upstreamHealth.publish({ upstream: this.#pool.name, server: peer.addr, healthy, reason: verdict ?? 'passed' });
    }
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}
