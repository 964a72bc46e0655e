/**
 * `sticky learn` (nginx Plus): the session table, session value -> server address, kept across
 * reloads per zone name. A response whose `create=` value is not empty learns (or renews) the
 * session for the server that sent it; a request whose `lookup=` value names a session goes to that
 * server while it is available (UpstreamPool.pick). A session not looked up for `timeout` is gone.
 *
 * Without `fleet` the table is in this process's memory: with worker_processes > 1 each worker
 * learns alone (docs/configuration.md#sticky). With `fleet`, the table is in the fleet's Redis
 * (`PREFIX{fleet}:sticky:ZONE:VALUE` -> address, expiring `timeout` after its last lookup, renewed
 * by GETEX), so a session learnt on one instance routes on every instance; the memory table is
 * written too and answers when Redis does not (down, slower than the fleet's `timeout=`).
 */
import type { StickyLearn } from '../config/types.js';
import type { FleetMember } from '../fleet/fleet-member.js';

/** nginx Plus: "one megabyte zone can store about 4000 sessions on the 64-bit platform". */
const SESSIONS_PER_MEGABYTE = 4000;

interface Session {
  readonly addr: string;
  expires: number;
}

/** One zone's sessions in least-recently-used order (a Map's first entry is the oldest). */
class MemoryTable {
  readonly #sessions = new Map<string, Session>();
  capacity: number;

  constructor(size: number) {
    this.capacity = capacityOf(size);
  }

  get(value: string, timeout: number, now: number): string | null {
    const s = this.#sessions.get(value);
    if (s === undefined) return null;
    this.#sessions.delete(value);
    if (s.expires <= now) return null;
    s.expires = now + timeout;
    this.#sessions.set(value, s);
    return s.addr;
  }

  set(value: string, addr: string, timeout: number, now: number): void {
    this.#sessions.delete(value);
    this.#sessions.set(value, { addr, expires: now + timeout });
    // Full: the least recently used session goes (nginx Plus expires its oldest).
    while (this.#sessions.size > this.capacity) this.#sessions.delete(this.#sessions.keys().next().value!);
  }

  get size(): number {
    return this.#sessions.size;
  }
}

/** Sessions a zone of `size` bytes keeps in memory. */
export function capacityOf(size: number): number {
  return Math.max(1, Math.floor((size / (1024 * 1024)) * SESSIONS_PER_MEGABYTE));
}

/** The Redis key of a session: the value's bytes as the client sent them. */
export function sessionKey(keyPrefix: string, zone: string, value: string): Buffer {
  return Buffer.concat([Buffer.from(`${keyPrefix}{fleet}:sticky:${zone}:`), Buffer.from(value, 'latin1')]);
}

export class StickySessions {
  readonly #tables = new Map<string, MemoryTable>();
  readonly #member: () => FleetMember | null;
  readonly #clock: () => number;

  constructor(member: () => FleetMember | null = () => null, clock: () => number = Date.now) {
    this.#member = member;
    this.#clock = clock;
  }

  #table(learn: StickyLearn): MemoryTable {
    let t = this.#tables.get(learn.zone);
    if (t === undefined) this.#tables.set(learn.zone, t = new MemoryTable(learn.size));
    else t.capacity = capacityOf(learn.size);
    return t;
  }

  /** The server address of the session `value` names, or null (unknown, expired). */
  async lookup(learn: StickyLearn, value: string): Promise<string | null> {
    const local = this.#table(learn).get(value, learn.timeout, this.#clock());
    const connection = this.#member()?.connection ?? null;
    if (connection === null) return local;
    const prefix = this.#member()!.config.keyPrefix;
    const remote = await connection.run((c) => c.getex(sessionKey(prefix, learn.zone, value), 'PX', learn.timeout));
    // Redis away (null from run) or the session learnt only here while it was: this process's table.
    return typeof remote === 'string' ? remote : local;
  }

  /** A response from `addr` created (or renewed) the session `value`. Never waits. */
  learn(learn: StickyLearn, value: string, addr: string): void {
    this.#table(learn).set(value, addr, learn.timeout, this.#clock());
    const member = this.#member();
    const connection = member?.connection ?? null;
    if (member === null || connection === null) return;
    const key = sessionKey(member.config.keyPrefix, learn.zone, value);
    void connection.run((c) => c.set(key, addr, 'PX', learn.timeout));
  }

  /** Sessions in this process's table of `zone` (tests, status). */
  size(zone: string): number {
    return this.#tables.get(zone)?.size ?? 0;
  }
}
