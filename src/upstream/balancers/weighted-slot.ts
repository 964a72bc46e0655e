import type { Peer } from '../peer.js';
import { peerAvailable } from '../peer.js';
import type { PickContext } from './balancer.js';

/** Rehashes before ip_hash and hash fall back to round robin, as in nginx. */
export const MAX_REHASH = 20;

/**
 * The peer owning slot `hash % totalWeight` when each peer owns `weight` consecutive slots
 * (nginx's walk in ip_hash and hash), or null when that peer may not be picked now.
 */
export function weightedSlot(peers: readonly Peer[], totalWeight: number, hash: number, ctx: PickContext): Peer | null {
  let w = hash % totalWeight;
  let i = 0;
  while (w >= (peers[i] as Peer).server.weight) {
    w -= (peers[i] as Peer).server.weight;
    i++;
  }
  const peer = peers[i] as Peer;
  return !ctx.tried.has(peer) && peerAvailable(peer, ctx.now, peers.length === 1) ? peer : null;
}

export function totalWeight(peers: readonly Peer[]): number {
  return peers.reduce((sum, p) => sum + p.server.weight, 0);
}
