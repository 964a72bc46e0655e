import { Agent } from 'node:http';
import type { UpstreamConfig } from '../config/types.js';
import { BALANCERS } from './balancers/registry.js';
import type { Balancer } from './balancers/balancer.js';
import { Peer, PeerState, formatAddr } from './peer.js';

/** Live per-server state keyed by "upstream|address"; one registry outlives config reloads. */
export class PeerStates {
  readonly #states = new Map<string, PeerState>();

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
 * One upstream group at run time: its peers (primaries and backups), the balancer over each,
 * and, when `keepalive` is set, the agent that keeps idle connections for reuse.
 */
export class UpstreamPool {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly primary: readonly Peer[];
  readonly backup: readonly Peer[];
  /** Present only with `keepalive N`: caches up to N idle connections per server. */
  readonly agent: Agent | null;
  readonly #primary: Balancer;
  readonly #backup: Balancer | null;

  constructor(config: UpstreamConfig, states: PeerStates) {
    this.name = config.name;
    this.config = config;
    const make = BALANCERS.get('round_robin');
    if (!make) throw new Error('round_robin balancer missing');
    const peers = config.servers.map((s) => new Peer(s, states.get(config.name, formatAddr(s.address))));
    this.primary = peers.filter((p) => !p.server.backup);
    this.backup = peers.filter((p) => p.server.backup);
    this.#primary = make(this.primary);
    this.#backup = this.backup.length > 0 ? make(this.backup) : null;
    this.agent = config.keepalive > 0
      ? new Agent({ keepAlive: true, maxFreeSockets: config.keepalive, timeout: config.keepaliveTimeout, scheduling: 'lifo' })
      : null;
  }

  /** nginx: backups are tried only when no primary can be picked. */
  pick(tried: ReadonlySet<Peer>, now: number): Peer | null {
    return this.#primary.pick({ tried, now }) ?? this.#backup?.pick({ tried, now }) ?? null;
  }

  close(): void {
    this.agent?.destroy();
  }
}
