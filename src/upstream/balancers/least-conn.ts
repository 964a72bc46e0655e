import type { Peer } from '../peer.js';
import { weightNow } from '../peer.js';
import type { Balancer, PickContext } from './balancer.js';
import { candidates, smoothWeightedPick } from './round-robin.js';

/**
 * nginx's least_conn (ngx_http_upstream_get_least_conn_peer): the server with the fewest open
 * connections relative to its weight; ties go to smooth weighted round robin among the tied.
 * `active` counts WebSocket tunnels for their whole life, so long-lived tunnels weigh as they should.
 */
export class LeastConn implements Balancer {
  readonly #peers: readonly Peer[];

  constructor(peers: readonly Peer[]) {
    this.#peers = peers;
  }

  pick(ctx: PickContext): Peer | null {
    let best: Peer | null = null;
    let bestWeight = 0;
    let tied: Peer[] = [];
    for (const peer of candidates(this.#peers, ctx)) {
      const w = weightNow(peer, ctx.now);
      // conns/weight compared without division, as nginx does.
      if (best === null || peer.state.active * bestWeight < best.state.active * w) {
        best = peer;
        bestWeight = w;
        tied = [peer];
      } else if (peer.state.active * bestWeight === best.state.active * w) {
        tied.push(peer);
      }
    }
    return tied.length > 1 ? smoothWeightedPick(tied, ctx.now) : best;
  }
}

export function leastConn(peers: readonly Peer[]): Balancer {
  return new LeastConn(peers);
}
