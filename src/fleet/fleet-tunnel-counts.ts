/**
 * `websocket_rebalance` over a fleet: the rebalancer's count source (upstream/rebalance/
 * tunnel-counts.ts) fed by the fleet's member records. Each tick, the rebalancer hands this
 * process's tunnels per server and its clients on their way back; they are published in the
 * member's record (MemberRecord.r) at its next write, and the answer adds what the other live
 * members published, as last read (counts_cache old at most: never a wait on Redis). Without a
 * fleet, or while Redis is unreachable (no members read), the answer is this process's counts.
 */
import type { TunnelCountSource, TunnelCountView } from '../upstream/rebalance/tunnel-counts.js';
import type { FleetMember } from './fleet-member.js';
import type { RebalanceView } from './member-record.js';
import { rebalanceSums } from './member-record.js';

/** A published view older than this (ms) is dropped: its upstream no longer rebalances. */
const PUBLISHED_MS = 5_000;

export class FleetTunnelCounts implements TunnelCountSource {
  readonly #member: () => FleetMember | null;
  readonly #now: () => number;
  /** Upstream -> what this process has to say about it, and when it last said it. */
  readonly #published = new Map<string, { view: RebalanceView; at: number }>();

  constructor(member: () => FleetMember | null, now: () => number = Date.now) {
    this.#member = member;
    this.#now = now;
  }

  view(upstream: string, local: ReadonlyMap<string, number>, returning: number): TunnelCountView {
    this.#published.set(upstream, { view: [Object.fromEntries(local), returning], at: this.#now() });
    const member = this.#member();
    const members = member?.members ?? [];
    if (member === null || members.length === 0) return { servers: local, instances: 1 };
    const others = rebalanceSums(members, member.id, upstream);
    // Only the servers this process may place clients on count (its own view of availability).
    const servers = new Map<string, number>();
    for (const [addr, n] of local) servers.set(addr, n + (others.servers.get(addr) ?? 0));
    return { servers, instances: 1 + others.members, returningElsewhere: others.returning };
  }

  /** What goes into this member's record (MemberRecord.r); undefined when nothing rebalances. */
  published(): Record<string, RebalanceView> | undefined {
    const now = this.#now();
    let out: Record<string, RebalanceView> | undefined;
    for (const [upstream, p] of this.#published) {
      if (now - p.at > PUBLISHED_MS) {
        this.#published.delete(upstream);
        continue;
      }
      (out ??= {})[upstream] = p.view;
    }
    return out;
  }
}
