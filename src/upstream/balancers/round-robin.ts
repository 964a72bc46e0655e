import type { Peer } from '../peer.js';
import { notePicked, peerAvailable, weightNow } from '../peer.js';
import type { Balancer, PickContext } from './balancer.js';

/**
 * nginx's smooth weighted round robin step (ngx_http_upstream_get_peer) over the given candidates:
 * every candidate gains its effective weight; the one with the highest current weight wins and
 * pays back the total. Weights 5,1,1 give a a b a c a a, never a burst. slow_start caps the weight
 * while a recovered server ramps up. With `ctx`, peers already tried or not available are
 * skipped in the same walk (no candidates array per pick: this runs for every request).
 */
export function smoothWeightedPick(peers: readonly Peer[], now: number, ctx?: PickContext): Peer | null {
  let best: Peer | null = null;
  let total = 0;
  const single = peers.length === 1;
  for (const peer of peers) {
    if (ctx !== undefined && (ctx.tried.has(peer) || !peerAvailable(peer, now, single))) continue;
    const w = Math.min(peer.effectiveWeight, weightNow(peer, now));
    peer.currentWeight += w;
    total += w;
    if (peer.effectiveWeight < peer.server.weight) peer.effectiveWeight++;
    if (best === null || peer.currentWeight > best.currentWeight) best = peer;
  }
  if (best !== null) best.currentWeight -= total;
  return best;
}

/** The peers a pick may choose: not tried yet and available. */
export function candidates(peers: readonly Peer[], ctx: PickContext): Peer[] {
  const single = peers.length === 1;
  return peers.filter((p) => !ctx.tried.has(p) && peerAvailable(p, ctx.now, single));
}

/** The default method: smooth weighted round robin over the available peers. */
export class RoundRobin implements Balancer {
  readonly #peers: readonly Peer[];

  constructor(peers: readonly Peer[]) {
    this.#peers = peers;
  }

  pick(ctx: PickContext): Peer | null {
    const best = smoothWeightedPick(this.#peers, ctx.now, ctx);
    if (best !== null) notePicked(best, ctx.now);
    return best;
  }
}

export function roundRobin(peers: readonly Peer[]): Balancer {
  return new RoundRobin(peers);
}
