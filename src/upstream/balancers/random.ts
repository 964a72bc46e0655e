import type { Peer } from '../peer.js';
import { weightNow } from '../peer.js';
import type { Balancer, BalancerOptions, PickContext } from './balancer.js';
import { candidates } from './round-robin.js';

/**
 * nginx's `random [two [least_conn]]`: a server chosen at random with probability proportional to
 * its weight; with `two`, two distinct servers are drawn and the one with fewer open connections
 * (relative to weight) wins.
 */
export class RandomPick implements Balancer {
  readonly #peers: readonly Peer[];
  readonly #two: boolean;
  readonly #random: () => number;

  constructor(peers: readonly Peer[], two: boolean, random: () => number) {
    this.#peers = peers;
    this.#two = two;
    this.#random = random;
  }

  #draw(candidates: readonly Peer[], now: number, except: Peer | null): Peer | null {
    let total = 0;
    for (const p of candidates) if (p !== except) total += weightNow(p, now);
    if (total === 0) return null;
    let r = this.#random() * total;
    for (const p of candidates) {
      if (p === except) continue;
      r -= weightNow(p, now);
      if (r < 0) return p;
    }
    return candidates.findLast((p) => p !== except) ?? null;
  }

  pick(ctx: PickContext): Peer | null {
    const cands = candidates(this.#peers, ctx);
    const first = this.#draw(cands, ctx.now, null);
    if (!this.#two || first === null) return first;
    const second = this.#draw(cands, ctx.now, first);
    if (second === null) return first;
    return second.state.active * weightNow(first, ctx.now) < first.state.active * weightNow(second, ctx.now) ? second : first;
  }
}

export function random(two: boolean): (peers: readonly Peer[], options: BalancerOptions) => Balancer {
  return (peers, options) => new RandomPick(peers, two, options.random);
}
