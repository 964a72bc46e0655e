/**
 * This process as a member of a fleet (docs/fleet.md): every `counts_cache` it publishes its open
 * connections per upstream server when they changed (at least every `heartbeat`, the record
 * expiring `ttl` after its last write) and reads every live member's record, in one round trip in
 * the background. The other members' sums go into each server's `remote` count, which
 * `least_conn fleet` adds to the live local count: picking a server never waits on Redis.
 *
 * Redis unreachable: the remote counts drop to 0 (balancing on local counts), the error log says so
 * once, status pages show it; when Redis answers again the member rejoins and says so once.
 */
import { hostname } from 'node:os';
import type { FleetConfig } from '../config/types.js';
import type { ErrorLog } from '../observability/error-log.js';
import type { PeerStates } from '../upstream/pool.js';
import type { FleetStats } from '../observability/stats.js';
import { RedisConnection, sameRedis } from './redis-connection.js';
import type { FleetKeys, FleetMemberView, MemberRecord } from './member-record.js';
import { SYNC_SCRIPT, fleetKeys, memberId, parseMembers, remoteCounts, sameCounts } from './member-record.js';

/** What the member publishes about this process, gathered by its owner when asked. */
export type MemberFigures = Pick<MemberRecord, 't' | 'c' | 'u'>;

export interface FleetMemberOptions {
  /** Live per-server state: `remote` counts are written here. */
  readonly states: PeerStates;
  /** The error log of the current config generation. */
  readonly log: () => ErrorLog;
  /** This process's figures now. */
  readonly figures: () => MemberFigures;
  /** @default process.pid */
  readonly pid?: number;
  /** The shared limits' state (limits/fleet-store.ts), shown with the fleet. */
  readonly limits?: () => NonNullable<FleetStats['limits']>;
}

const SYNC_COMMAND = 'sluiceFleetSync';

export class FleetMember {
  #config: FleetConfig;
  #connection: RedisConnection | null = null;
  /** The connection being opened (ioredis loading), so that a close waits for it. */
  #opening: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #syncing = false;
  #closed = false;
  #keys: FleetKeys;
  #id: string;
  readonly #pid: number;
  readonly #started = Date.now();
  readonly #host = hostname();
  readonly #options: FleetMemberOptions;
  /** The record last written, and when (ms since the epoch). */
  #written: MemberRecord | null = null;
  #writtenAt = 0;
  /** The members as last read (empty before the first read and while Redis is down). */
  #members: readonly FleetMemberView[] = [];
  #readAt = 0;
  /** When Redis last went up or down (ms since the epoch). */
  #since = Date.now();
  #lastError: string | null = null;

  constructor(config: FleetConfig, options: FleetMemberOptions) {
    this.#config = config;
    this.#options = options;
    this.#pid = options.pid ?? process.pid;
    this.#keys = fleetKeys(config.keyPrefix);
    this.#id = memberId(config.name, this.#pid);
  }

  /** "NAME/PID". */
  /** The live members as last read (this one included; empty before the first read and while Redis is down). */
  get members(): readonly FleetMemberView[] {
    return this.#members;
  }

  get id(): string {
    return this.#id;
  }

  get config(): FleetConfig {
    return this.#config;
  }

  /** The Redis connection, for other fleet features (null until opened). */
  get connection(): RedisConnection | null {
    return this.#connection;
  }

  /** Whether Redis answered the last sync. */
  get up(): boolean {
    return this.#connection?.up ?? false;
  }

  /**
   * Whether this member's record is in Redis now (the last sync wrote or found it): shared limits
   * count there only then, since other members drop the limit_conn holds of a member without one.
   */
  get joined(): boolean {
    return this.#written !== null && this.up;
  }

  /** Opens the connection (loading ioredis) and starts the loop; does not wait for Redis. */
  async start(): Promise<void> {
    await this.#open();
    this.#schedule();
  }

  #open(): Promise<void> {
    const config = this.#config;
    this.#opening = RedisConnection.open(config, `sluice:${this.#id}`, {
      up: () => this.#onUp(),
      down: (reason) => this.#onDown(reason),
    }).then((c) => {
      if (this.#closed || config !== this.#config) {
        void c.close();
        return;
      }
      this.#connection = c;
    });
    return this.#opening;
  }

  /** One tick per counts_cache, or per heartbeat when that is shorter (the record must not expire). */
  #schedule(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = setInterval(() => this.#tick(), tickOf(this.#config));
    this.#timer.unref();
  }

  /**
   * A reload's `fleet`: the same Redis keeps its connection (new names, prefix and periods take
   * effect at once); another Redis gets a new one, the old member leaving the old Redis.
   */
  async update(config: FleetConfig): Promise<void> {
    const old = this.#config;
    const oldConnection = this.#connection;
    const oldKeys = this.#keys;
    const oldId = this.#id;
    this.#config = config;
    this.#keys = fleetKeys(config.keyPrefix);
    this.#id = memberId(config.name, this.#pid);
    this.#written = null;
    if (tickOf(config) !== tickOf(old)) this.#schedule();
    if (sameRedis(old, config) && oldConnection !== null) {
      if (oldId !== this.#id || oldKeys.members !== this.#keys.members) await leave(oldConnection, oldKeys, oldId);
      return;
    }
    this.#connection = null;
    this.#members = [];
    this.#options.states.setRemote(new Map());
    await oldConnection?.close((c) => leaveCommands(c, oldKeys, oldId));
    await this.#open();
  }

  /** A sync from a timer: whatever goes wrong in it is logged, never an unhandled rejection. */
  #tick(): void {
    this.sync().catch((err: unknown) => {
      this.#options.log().log('alert', `fleet: sync failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  }

  /** One round trip: publish when changed (or heartbeat due), read the members. Skipped while one is in flight. */
  async sync(): Promise<void> {
    const connection = this.#connection;
    if (connection === null || this.#syncing || this.#closed) return;
    this.#syncing = true;
    try {
      const config = this.#config;
      const now = Date.now();
      const figures = this.#options.figures();
      const record: MemberRecord = { n: config.name, p: this.#pid, h: this.#host, s: this.#started, w: now, ...figures };
      const write = !sameCounts(this.#written, record) || now - this.#writtenAt >= config.heartbeat;
      const run = connection.script(SYNC_COMMAND, 2, SYNC_SCRIPT);
      const keys = this.#keys;
      const reply = await run(keys.members, keys.memberPrefix + this.#id, this.#id, write ? JSON.stringify(record) : '', config.ttl, keys.memberPrefix);
      if (connection !== this.#connection || this.#closed) return;
      if (reply === null) {
        // Down, or not connected yet: no counts older than this round trip stay in use.
        this.#fallBack();
        return;
      }
      if (write) {
        this.#written = record;
        this.#writtenAt = now;
      }
      const members = parseMembers(reply);
      // Redis lost our record (a restart, a flush): write it at the next tick.
      if (!members.some((m) => m.id === this.#id)) this.#written = null;
      this.#members = members;
      this.#readAt = Date.now();
      this.#options.states.setRemote(remoteCounts(members, this.#id));
    } finally {
      this.#syncing = false;
    }
  }

  /** Without Redis, `least_conn fleet` counts this process's connections only. */
  #fallBack(): void {
    this.#members = [];
    this.#written = null;
    this.#options.states.setRemote(new Map());
  }

  #onUp(): void {
    const was = this.#lastError;
    this.#since = Date.now();
    this.#lastError = null;
    if (was !== null) {
      this.#options.log().log('notice', `fleet: redis ${this.#config.display} reachable again, member "${this.#id}" rejoins the fleet`);
    }
    this.#tick();
  }

  #onDown(reason: string): void {
    this.#since = Date.now();
    this.#lastError = reason;
    this.#fallBack();
    this.#options.log().log('error', `fleet: redis ${this.#config.display} unreachable (${reason}), balancing on this instance's own counts until it returns`);
  }

  /** The fleet as this process sees it, for /status, /metrics and the dashboard. */
  stats(): FleetStats {
    const config = this.#config;
    return {
      url: config.display,
      name: config.name,
      self: this.#id,
      redisUp: this.up,
      since: this.#since,
      error: this.#lastError,
      readAt: this.#readAt,
      members: this.#members.map((m) => ({
        id: m.id,
        name: m.record.n,
        pid: m.record.p,
        host: m.record.h,
        started: m.record.s,
        written: m.record.w,
        tunnels: m.record.t,
        connections: m.record.c,
        upstreams: m.record.u,
      })),
      ...(this.#options.limits === undefined ? {} : { limits: this.#options.limits() }),
    };
  }

  /** Leaves the fleet (its record deleted when Redis is up) and closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#opening?.catch(() => undefined);
    const keys = this.#keys;
    const id = this.#id;
    await this.#connection?.close((c) => leaveCommands(c, keys, id));
    this.#connection = null;
  }
}

function tickOf(config: FleetConfig): number {
  return Math.min(config.countsCache, config.heartbeat);
}

function leaveCommands(client: RedisConnection['client'], keys: FleetKeys, id: string): Promise<unknown> {
  return client.multi().del(keys.memberPrefix + id).srem(keys.members, id).exec();
}

/** The old member's record goes at once (a renamed member is otherwise listed until its ttl). */
async function leave(connection: RedisConnection, keys: FleetKeys, id: string): Promise<void> {
  await connection.run((c) => leaveCommands(c, keys, id));
}
