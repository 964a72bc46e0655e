/**
 * What a fleet member publishes in Redis (its record), the key layout, and the sums the
 * balancers read: pure data, so that it is tested without Redis (docs/fleet.md "Key layout").
 */

/** Where one upstream server stands in a member's view: open connections and availability. */
export type ServerView = readonly [active: number, state: string];

/** A member's record, as JSON in its key. Short field names: it is rewritten every few hundred ms. */
export interface MemberRecord {
  /** The instance name (`name=`). */
  readonly n: string;
  /** The process id. */
  readonly p: number;
  /** Host name of the machine. */
  readonly h: string;
  /** When the process joined (ms since the epoch). */
  readonly s: number;
  /** When this record was written (ms since the epoch, the member's clock). */
  readonly w: number;
  /** WebSocket tunnels open on this member. */
  readonly t: number;
  /** Client connections open on this member. */
  readonly c: number;
  /** Upstream name -> server key (address, "addr#2" for a second line naming it) -> view. */
  readonly u: Readonly<Record<string, Readonly<Record<string, ServerView>>>>;
  /**
   * `websocket_rebalance`: upstream name -> [open WebSocket tunnels per usable server address,
   * clients this member closed that have not reconnected yet]. Absent without rebalancing.
   */
  readonly r?: Readonly<Record<string, RebalanceView>>;
}

/** One upstream's tunnels per server address and the clients on their way back (MemberRecord.r). */
export type RebalanceView = readonly [servers: Readonly<Record<string, number>>, returning: number];

/** What the other members say about one rebalancing upstream. */
export interface RebalanceSums {
  /** Their open WebSocket tunnels per server address. */
  readonly servers: Map<string, number>;
  /** How many of them rebalance this upstream. */
  readonly members: number;
  /** Their clients on the way back. */
  readonly returning: number;
}

/** The tunnels of `upstream` over every member but `self` that rebalances it. */
export function rebalanceSums(members: readonly FleetMemberView[], self: string, upstream: string): RebalanceSums {
  const servers = new Map<string, number>();
  let count = 0;
  let returning = 0;
  for (const m of members) {
    if (m.id === self) continue;
    const view = m.record.r?.[upstream];
    if (!Array.isArray(view) || typeof view[0] !== 'object' || view[0] === null) continue;
    count++;
    if (typeof view[1] === 'number' && view[1] > 0) returning += view[1];
    for (const [addr, n] of Object.entries(view[0])) if (typeof n === 'number' && n > 0) servers.set(addr, (servers.get(addr) ?? 0) + n);
  }
  return { servers, members: count, returning };
}

/** One member as read from Redis. */
export interface FleetMemberView {
  /** "NAME/PID". */
  readonly id: string;
  readonly record: MemberRecord;
}

/**
 * The fleet's keys, all in one Redis Cluster hash slot (the `{fleet}` hash tag), so that the
 * read script may touch every member's record:
 * - `PREFIX{fleet}:members`: a set of member ids;
 * - `PREFIX{fleet}:member:ID`: a member's record, expiring `ttl` after its last write.
 */
export interface FleetKeys {
  readonly members: string;
  /** Prefix of a member's record key: the id follows. */
  readonly memberPrefix: string;
}

export function fleetKeys(keyPrefix: string): FleetKeys {
  return { members: `${keyPrefix}{fleet}:members`, memberPrefix: `${keyPrefix}{fleet}:member:` };
}

/** "NAME/PID": each serving process is a member (docs/fleet.md "Members"). */
export function memberId(name: string, pid: number): string {
  return `${name}/${pid}`;
}

/**
 * Writes a member's record (when ARGV[2] is not empty) and reads every live member's, in one round
 * trip. A member whose record has expired leaves the members set here.
 * KEYS[1] members set, KEYS[2] own record; ARGV[1] own id, ARGV[2] record or "", ARGV[3] ttl ms,
 * ARGV[4] record key prefix. Returns [id, record, id, record, ...].
 */
export const SYNC_SCRIPT = `
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('SADD', KEYS[1], ARGV[1])
end
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('GET', ARGV[4] .. id)
  if v then
    out[#out + 1] = id
    out[#out + 1] = v
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
`;

/** Whether a parsed record has the shape the sums read: `u` an object of objects (a damaged one would make them throw). */
function wellFormed(record: unknown): record is MemberRecord {
  if (typeof record !== 'object' || record === null) return false;
  const u = (record as { u?: unknown }).u;
  if (typeof u !== 'object' || u === null || Array.isArray(u)) return false;
  return Object.values(u).every((servers) => typeof servers === 'object' && servers !== null && !Array.isArray(servers));
}

/** Reads the script's reply; records that do not parse (another version's, damaged) are skipped. */
export function parseMembers(reply: unknown): FleetMemberView[] {
  const out: FleetMemberView[] = [];
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const id = String(reply[i]);
    try {
      const record = JSON.parse(String(reply[i + 1])) as MemberRecord;
      if (wellFormed(record)) out.push({ id, record });
    } catch {
      // skipped: see above
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Open connections per "upstream|server" summed over every member but `self`: what
 * `least_conn fleet` adds to this process's own live counts.
 */
export function remoteCounts(members: readonly FleetMemberView[], self: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const m of members) {
    if (m.id === self) continue;
    for (const [upstream, servers] of Object.entries(m.record.u)) {
      for (const [server, view] of Object.entries(servers)) {
        const n = Array.isArray(view) && typeof view[0] === 'number' && view[0] > 0 ? view[0] : 0;
        if (n === 0) continue;
        const key = `${upstream}|${server}`;
        sums.set(key, (sums.get(key) ?? 0) + n);
      }
    }
  }
  return sums;
}

/**
 * Whether two records say the same thing but for their write time: an unchanged member then
 * writes only once per heartbeat.
 */
export function sameCounts(a: MemberRecord | null, b: MemberRecord): boolean {
  if (a === null) return false;
  return a.t === b.t && a.c === b.c && JSON.stringify(a.u) === JSON.stringify(b.u) && JSON.stringify(a.r) === JSON.stringify(b.r);
}
