/**
 * What `websocket_rebalance` decides, as pure functions of counts: whether an upstream's tunnels
 * are spread within the tolerance, how many should leave each server, this instance's part of
 * that and of the rate when the counts are a fleet's. The rebalancer (server/rebalancer.ts) feeds
 * them counts and closes what they say; nothing here touches a socket or a clock.
 */

/** One usable server of an upstream (not down, backup, failed, unhealthy, full or removed). */
export interface ServerLoad {
  /** "127.0.0.1:8010": with the upstream's name, what identifies a server across reloads. */
  readonly addr: string;
  /** Its weight now (slow_start included): its share of the tunnels is weight / total weight. */
  readonly weight: number;
  /** Open WebSocket tunnels to it (over the fleet when the counts are a fleet's). */
  readonly count: number;
}

/** What a plan says for one upstream. */
export interface RebalancePlan {
  /** Every server holds its share within the tolerance (or within one tunnel of it). */
  readonly balanced: boolean;
  /** Tunnels that should leave each server, most loaded servers first; empty when balanced. */
  readonly moves: ReadonlyMap<string, number>;
  /** The sum of `moves`. */
  readonly total: number;
}

const BALANCED: RebalancePlan = Object.freeze({ balanced: true, moves: new Map<string, number>(), total: 0 });

/** Each server's share of `total` tunnels by weight (the mean, where weights are equal). */
export function shares(servers: readonly ServerLoad[]): number[] {
  const total = servers.reduce((n, s) => n + s.count, 0);
  const weights = servers.reduce((n, s) => n + s.weight, 0);
  return servers.map((s) => (weights > 0 ? (total * s.weight) / weights : 0));
}

/**
 * Whether the upstream needs rebalancing, and how many tunnels should leave which server.
 *
 * A server is out of balance when its count strays from its share by more than `tolerance` of
 * that share *and* by at least one tunnel (no churn over a fraction of a tunnel). Over-loaded and
 * under-loaded servers both count: a new server with no tunnel is what makes an upstream
 * unbalanced after a scale-up, and only closes on the others can fill it. Then as many tunnels as
 * the servers above their share hold above it (rounded down) are taken one by one from the server
 * most loaded relative to its share at that moment (while it is above its share), so that the
 * spread narrows from the top and the reconnecting clients, placed by least_conn, land on the
 * servers below their share.
 */
export function planRebalance(servers: readonly ServerLoad[], tolerance: number): RebalancePlan {
  if (servers.length < 2) return BALANCED;
  const share = shares(servers);
  const off = servers.some((s, i) => {
    const gap = Math.abs(s.count - share[i]!);
    return gap >= 1 && gap > tolerance * share[i]!;
  });
  if (!off) return BALANCED;
  let surplus = 0;
  for (let i = 0; i < servers.length; i++) surplus += Math.max(0, servers[i]!.count - share[i]!);
  // A float sum such as 7.999999 is 8 tunnels.
  const total = Math.floor(surplus + 1e-9);
  if (total === 0) return BALANCED;
  const left = servers.map((s) => s.count);
  const taken = new Array<number>(servers.length).fill(0);
  for (let n = 0; n < total; n++) {
    let best = -1;
    for (let i = 0; i < servers.length; i++) {
      if (left[i]! <= share[i]! + 1e-9) continue;
      // Most loaded relative to its share: left/share compared without division.
      if (best < 0 || left[i]! * share[best]! > left[best]! * share[i]!) best = i;
    }
    if (best < 0) break;
    left[best]!--;
    taken[best]!++;
  }
  const order = servers.map((_, i) => i).filter((i) => taken[i]! > 0).sort((a, b) => servers[b]!.count * share[a]! - servers[a]!.count * share[b]!);
  const moves = new Map(order.map((i) => [servers[i]!.addr, taken[i]!] as const));
  return { balanced: false, moves, total: [...moves.values()].reduce((a, b) => a + b, 0) };
}

/**
 * The loads with `returning` clients added where least_conn would place them (one by one on the
 * server with the fewest tunnels relative to its weight): clients closed a moment ago that have not
 * reconnected yet. Without them a plan made before they are back would see the total fall and
 * close more tunnels than balancing needs (with clients that wait seconds before reconnecting, far
 * more).
 */
export function withReturning(servers: readonly ServerLoad[], returning: number): ServerLoad[] {
  const counts = servers.map((s) => s.count);
  for (let n = 0; n < returning && servers.length > 0; n++) {
    let best = 0;
    for (let i = 1; i < servers.length; i++) if (counts[i]! * servers[best]!.weight < counts[best]! * servers[i]!.weight) best = i;
    counts[best]!++;
  }
  return servers.map((s, i) => ({ ...s, count: counts[i]! }));
}

/**
 * This instance's part of a fleet-wide plan: of the tunnels that should leave a server, the
 * fraction this instance holds of that server's tunnels (local / fleet count, at most 1: the
 * fleet's counts may be a moment older than the local ones). Summed over the instances, the
 * parts give the plan back. With local counts only, the parts are the plan.
 */
export function localPart(plan: RebalancePlan, fleet: ReadonlyMap<string, number>, local: ReadonlyMap<string, number>): Map<string, number> {
  const part = new Map<string, number>();
  for (const [addr, n] of plan.moves) {
    const mine = local.get(addr) ?? 0;
    const all = fleet.get(addr) ?? 0;
    if (mine === 0) continue;
    part.set(addr, all <= mine ? n : (n * mine) / all);
  }
  return part;
}

/**
 * This instance's rate of closes (per second): `maxRate` times its share of the fleet's closes
 * (its part / the plan's total), so that the rates of all instances add up to `maxRate`. Worker
 * processes of one instance each hold their own tunnels and split the instance's rate evenly.
 * Where the shares cannot be known (the fleet's counts show nothing to move while this instance
 * has a part), an even split over the live instances stands in.
 *
 * @param processes - worker processes of this instance (1 without worker_processes).
 * @param instances - live instances whose counts the plan used (1: local counts).
 */
export function instanceRate(maxRate: number, part: number, total: number, processes: number, instances: number): number {
  if (part <= 0) return 0;
  const share = total > 0 ? Math.min(1, part / total) : 1 / Math.max(1, instances);
  return (maxRate * share) / Math.max(1, processes);
}

/**
 * Whole closes per server from fractional parts: the whole part, plus one more with the
 * probability of the fraction (`random` in [0, 1)), so that instances holding a third of a close
 * each close one between them on average, not one each. Never more than the tunnels held here.
 */
export function wholeCloses(part: ReadonlyMap<string, number>, local: ReadonlyMap<string, number>, random: () => number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [addr, x] of part) {
    const n = Math.min(local.get(addr) ?? 0, Math.floor(x + random()));
    if (n > 0) out.set(addr, n);
  }
  return out;
}

/**
 * At most `budget` of `wanted` closes, taken one by one from the server with the most tunnels
 * still wanted (the most loaded first: `wanted` lists them in that order, which breaks ties).
 */
export function withinBudget(wanted: ReadonlyMap<string, number>, budget: number): Map<string, number> {
  const left = new Map(wanted);
  const out = new Map<string, number>();
  for (let n = 0; n < budget; n++) {
    let best: string | null = null;
    for (const [addr, k] of left) if (k > 0 && (best === null || k > left.get(best)!)) best = addr;
    if (best === null) break;
    left.set(best, left.get(best)! - 1);
    out.set(best, (out.get(best) ?? 0) + 1);
  }
  return out;
}
