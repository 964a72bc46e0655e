import type { Peer } from '../peer.js';
import { weightNow } from '../peer.js';
import type { Balancer, PickContext } from './balancer.js';
import { candidates, smoothWeightedPick } from './round-robin.js';

/** The connections a pick weighs: this process's, plus the fleet's other members' with `fleet`. */
function load(peer: Peer, fleet: boolean): number {
  return fleet ? peer.state.active + peer.state.remote : peer.state.active;
}

/**
 * nginx's least_conn (ngx_http_upstream_get_least_conn_peer): the server with the fewest open
 * connections relative to its weight; ties go to smooth weighted round robin among the tied.
 * `active` counts WebSocket tunnels for their whole life, so long-lived tunnels weigh as they should.
 * `least_conn fleet` adds each server's `remote` count: what the other fleet members had open at
 * their last publication (src/fleet/fleet-member.ts), read in the background, never waited for.
 */
export class LeastConn implements Balancer {
  readonly #peers: readonly Peer[];
  readonly #fleet: boolean;

  constructor(peers: readonly Peer[], fleet = false) {
    this.#peers = peers;
    this.#fleet = fleet;
  }

  pick(ctx: PickContext): Peer | null {
    let best: Peer | null = null;
    let bestLoad = 0;
    let bestWeight = 0;
    let tied: Peer[] = [];
    const fleet = this.#fleet;
    for (const peer of candidates(this.#peers, ctx)) {
      const w = weightNow(peer, ctx.now);
      const n = load(peer, fleet);
      // conns/weight compared without division, as nginx does.
      if (best === null || n * bestWeight < bestLoad * w) {
        best = peer;
        bestLoad = n;
        bestWeight = w;
        tied = [peer];
      } else if (n * bestWeight === bestLoad * w) {
        tied.push(peer);
      }
    }
    return tied.length > 1 ? smoothWeightedPick(tied, ctx.now) : best;
  }
}

export function leastConn(peers: readonly Peer[], fleet = false): Balancer {
  return new LeastConn(peers, fleet);
}
