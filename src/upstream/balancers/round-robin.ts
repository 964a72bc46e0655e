import type { Peer } from '../peer.js';
import { peerAvailable } from '../peer.js';
import type { Balancer, PickContext } from './balancer.js';

/**
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every available peer gains
 * its effective weight; the one with the highest current weight wins and pays back the total.
 * Weights 5,1,1 give a a b a c a a, never a burst.
 */
export class RoundRobin implements Balancer {
  readonly #peers: readonly Peer[];
  readonly #single: boolean;

  constructor(peers: readonly Peer[]) {
    this.#peers = peers;
    this.#single = peers.length === 1;
  }

  pick(ctx: PickContext): Peer | null {
    let best: Peer | null = null;
    let total = 0;
    for (const peer of this.#peers) {
      if (ctx.tried.has(peer) || !peerAvailable(peer, ctx.now, this.#single)) continue;
      peer.currentWeight += peer.effectiveWeight;
      total += peer.effectiveWeight;
      if (peer.effectiveWeight < peer.server.weight) peer.effectiveWeight++;
      if (best === null || peer.currentWeight > best.currentWeight) best = peer;
    }
    if (best === null) return null;
    best.currentWeight -= total;
    // The failure window restarts when a peer is tried again after it (nginx `checked`).
    if (ctx.now - best.state.checked > best.server.failTimeout) best.state.checked = ctx.now;
    return best;
  }
}

export function roundRobin(peers: readonly Peer[]): Balancer {
  return new RoundRobin(peers);
}
