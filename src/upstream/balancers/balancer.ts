import type { Peer } from '../peer.js';

/** What one pick knows about the request. */
export interface PickContext {
  /** Servers already tried for this request (never picked again). */
  readonly tried: ReadonlySet<Peer>;
  /** Monotonic time in ms. */
  readonly now: number;
  /**
   * The balancing key: the client address for ip_hash, the evaluated KEY for hash; "" otherwise.
   */
  readonly key: string;
}

/** A load-balancing method over one list of peers (the primaries or the backups of an upstream). */
export interface Balancer {
  /** The next peer, or null when none is available. */
  pick(ctx: PickContext): Peer | null;
}

/** Injectable sources for methods that need them (tests pass a seeded random). */
export interface BalancerOptions {
  /** Uniform in [0, 1). @default Math.random */
  readonly random: () => number;
}

export type BalancerFactory = (peers: readonly Peer[], options: BalancerOptions) => Balancer;
