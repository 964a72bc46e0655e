import type { Peer } from '../peer.js';

/** What one pick knows about the request. */
export interface PickContext {
  /** Servers already tried for this request (never picked again). */
  readonly tried: ReadonlySet<Peer>;
  /** Monotonic time in ms. */
  readonly now: number;
}

/** A load-balancing method over one list of peers (the primaries or the backups of an upstream). */
export interface Balancer {
  /** The next peer, or null when none is available. */
  pick(ctx: PickContext): Peer | null;
}

export type BalancerFactory = (peers: readonly Peer[]) => Balancer;
