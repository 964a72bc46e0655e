/**
 * Limit zones written with a trailing `fleet` (docs/fleet.md "Shared limits"): counted in the
 * fleet's Redis, one atomic script per request's checks (fleet-scripts.ts), so that a client
 * spreading over the instances of a fleet meets one limit. Every other zone, and a fleet zone
 * while Redis is unreachable, slow (the fleet's `timeout=`) or this member has not (re)joined,
 * counts in this process's own store (memory, or the primary's for a worker): a request never
 * waits on Redis longer than the timeout, and the limits stay per instance meanwhile.
 *
 * Each serving process talks to Redis on its own connection (the fleet member's): with
 * worker_processes > 1 each worker is a member, and a round trip through the primary would only
 * add one hop.
 *
 * A request whose level mixes fleet and local zones runs each group in its own store (fleet first,
 * refused there: the local zones are not counted); nginx's "none counted when one refuses" then
 * holds within each group only (docs/differences-from-nginx.md).
 */
import type { ErrorLog } from '../observability/error-log.js';
import type { FleetMember } from '../fleet/fleet-member.js';
import { fleetKeys } from '../fleet/member-record.js';
import type { ConnCheck, ConnHold, ConnOutcome, LimitStore, ReqCheck, ReqOutcome } from './limit-store.js';
import { LIMIT_CONN_ACQUIRE_SCRIPT, LIMIT_CONN_RELEASE_SCRIPT, LIMIT_REQ_SCRIPT, LimitKeys } from './fleet-scripts.js';

/** The checks of one store, with their indexes among the request's checks. */
export interface CheckGroup<C> {
  readonly checks: C[];
  readonly at: number[];
}

/**
 * Splits a request's checks into fleet zones' and the others', in order. A limit_req group's last
 * check is accounted at once (`last`) as the level's last limit is: each group is a whole request
 * to its store.
 */
export function splitChecks<C extends { readonly zone: { readonly fleet?: boolean } }>(checks: readonly C[]): { fleet: CheckGroup<C>; local: CheckGroup<C> } {
  const fleet: CheckGroup<C> = { checks: [], at: [] };
  const local: CheckGroup<C> = { checks: [], at: [] };
  for (let i = 0; i < checks.length; i++) {
    const g = checks[i]!.zone.fleet === true ? fleet : local;
    g.checks.push(checks[i]!);
    g.at.push(i);
  }
  return { fleet, local };
}

/** A group's limit_req checks as a whole request: its last check accounted at once when the request's last is. */
function asRequest(group: CheckGroup<ReqCheck>, lastOfAll: boolean): ReqCheck[] {
  const n = group.checks.length;
  return group.checks.map((c, i) => (i === n - 1 && lastOfAll !== c.last ? { ...c, last: lastOfAll } : c));
}

/** An outcome of a group's checks, its index mapped back to the request's. */
export function mapReqOutcome(r: ReqOutcome, at: readonly number[]): ReqOutcome {
  return r.rc === 'declined' ? r : { ...r, index: at[r.index]! };
}

/** Two groups' outcomes as one: a refusal stands; otherwise the longer delay (nginx's max over the limits). */
export function combineReq(a: ReqOutcome, b: ReqOutcome): ReqOutcome {
  if (a.rc === 'busy' || a.rc === 'error') return a;
  if (b.rc === 'busy' || b.rc === 'error') return b;
  if (a.rc === 'declined') return b;
  if (b.rc === 'declined') return a;
  return b.delay > a.delay ? b : a;
}

/** The Redis reply of LIMIT_REQ_SCRIPT as an outcome (null: not a reply of it). */
export function reqReply(reply: unknown): ReqOutcome | null {
  if (!Array.isArray(reply)) return null;
  const [code, a, b, c] = reply as number[];
  if (code === 1) return { rc: 'busy', index: Number(a), excess: Number(b) };
  if (code === 0) return { rc: 'ok', delay: Number(a), excess: Number(b), index: Number(c) };
  return null;
}

/** Why a fleet zone counted locally, for the log line. */
function fallbackReason(member: FleetMember | null): string {
  if (member === null || !member.up) return 'redis unreachable';
  return member.joined ? 'redis failed' : 'joining the fleet';
}

/** Where a hold was counted in Redis: the key's prefix and the member id it was taken under. */
interface RemoteHold {
  readonly hold: ConnHold;
  readonly keyPrefix: string;
  readonly member: string;
}

/** What /status and /metrics show of the shared limits (FleetStats.limits). */
export interface FleetLimitFigures {
  /** Fleet zones counting on this instance only since Redis failed them (sorted). */
  local: string[];
  /** Requests and tunnels a fleet zone decided locally because Redis was away. */
  fallbacks: number;
}

export class FleetLimitStore implements LimitStore {
  readonly #local: LimitStore;
  readonly #member: () => FleetMember | null;
  readonly #log: () => ErrorLog;
  /**
   * The holds counted in Redis, by identity: a request releases the very check objects it
   * acquired with (RequestLimits.hold), so each goes back where it was counted.
   */
  readonly #remote = new WeakMap<ConnHold, RemoteHold>();
  /** Releases Redis did not take (down): retried after its next answer. */
  #unreleased: RemoteHold[] = [];
  /** Fleet zones counting locally since their last Redis failure (logged once each, until Redis answers). */
  readonly #degraded = new Set<string>();
  #fallbacks = 0;
  /** The keys under the fleet's current key prefix, made once per prefix (a reload may change it). */
  #keys: LimitKeys | null = null;

  constructor(local: LimitStore, member: () => FleetMember | null, log: () => ErrorLog) {
    this.#local = local;
    this.#member = member;
    this.#log = log;
  }

  /** The store for zones without `fleet` and for fleet zones while Redis is away. */
  get local(): LimitStore {
    return this.#local;
  }

  figures(): FleetLimitFigures {
    return { local: [...this.#degraded].sort(), fallbacks: this.#fallbacks };
  }

  /** The limit keys under `keyPrefix`: the current prefix's are kept, another's (a hold from before a reload) made for the call. */
  #keysFor(keyPrefix: string): LimitKeys {
    if (this.#keys?.keyPrefix === keyPrefix) return this.#keys;
    const keys = new LimitKeys(keyPrefix, fleetKeys(keyPrefix).memberPrefix);
    if (keyPrefix === this.#member()?.config.keyPrefix) this.#keys = keys;
    return keys;
  }

  /** The member when its record is in Redis (others drop holds of members without one), else null. */
  #joined(): FleetMember | null {
    const m = this.#member();
    return m !== null && m.joined && m.connection !== null ? m : null;
  }

  /** A fleet zone decided locally: logged once per zone until Redis answers again. */
  #fellBack(zones: readonly { readonly zone: { readonly name: string } }[], reason: string): void {
    this.#fallbacks++;
    for (const { zone } of zones) {
      if (this.#degraded.has(zone.name)) continue;
      this.#degraded.add(zone.name);
      this.#log().log('warn', `fleet: limit zone "${zone.name}" counts on this instance only (${reason}) until redis is reachable again`);
    }
  }

  #answered(): void {
    if (this.#degraded.size > 0) {
      this.#log().log('notice', `fleet: limit zones ${[...this.#degraded].map((z) => `"${z}"`).join(', ')} count across the fleet again`);
      this.#degraded.clear();
    }
    if (this.#unreleased.length > 0) {
      const pending = this.#unreleased;
      this.#unreleased = [];
      for (const r of pending) void this.#releaseRemote(r);
    }
  }

  limitReq(checks: readonly ReqCheck[]): ReqOutcome | Promise<ReqOutcome> {
    if (!checks.some((c) => c.zone.fleet === true)) return this.#local.limitReq(checks);
    return this.#limitReq(checks);
  }

  async #limitReq(checks: readonly ReqCheck[]): Promise<ReqOutcome> {
    const { fleet, local } = splitChecks(checks);
    const lastOfAll = checks[checks.length - 1]!.last;
    const fleetOutcome = mapReqOutcome(await this.#fleetReq(asRequest(fleet, local.checks.length === 0 && lastOfAll)), fleet.at);
    if (local.checks.length === 0 || fleetOutcome.rc === 'busy' || fleetOutcome.rc === 'error') return fleetOutcome;
    return combineReq(fleetOutcome, mapReqOutcome(await this.#local.limitReq(asRequest(local, lastOfAll)), local.at));
  }

  /** A group of fleet zones' checks: in Redis, or locally while it is away. */
  async #fleetReq(checks: ReqCheck[]): Promise<ReqOutcome> {
    const member = this.#joined();
    if (member !== null) {
      const keys = this.#keysFor(member.config.keyPrefix);
      const args: (string | number | Buffer)[] = checks.map((c) => keys.key('req', c.zone.name, c.key));
      for (const c of checks) args.push(c.zone.rate, c.burst, c.delay, c.last ? 1 : 0);
      const run = member.connection!.script('sluiceLimitReq', checks.length, LIMIT_REQ_SCRIPT);
      const outcome = reqReply(await run(...args));
      if (outcome !== null) {
        this.#answered();
        return outcome;
      }
    }
    this.#fellBack(checks, fallbackReason(this.#member()));
    return this.#local.limitReq(checks);
  }

  acquire(checks: readonly ConnCheck[]): ConnOutcome | Promise<ConnOutcome> {
    if (!checks.some((c) => c.zone.fleet === true)) return this.#local.acquire(checks);
    return this.#acquire(checks);
  }

  async #acquire(checks: readonly ConnCheck[]): Promise<ConnOutcome> {
    const { fleet, local } = splitChecks(checks);
    const remote = await this.#fleetAcquire(fleet.checks);
    if (remote !== null && !remote.outcome.ok) return { ...remote.outcome, index: fleet.at[remote.outcome.index]! };
    // Redis away: the fleet zones count here, with the others, as one request.
    if (remote === null) return this.#local.acquire(checks);
    if (local.checks.length === 0) return remote.outcome;
    const r = await this.#local.acquire(local.checks);
    if (r.ok) return r;
    this.release(fleet.checks);
    return { ...r, index: local.at[r.index]! };
  }

  /** Fleet zones' holds in Redis: the outcome, or null when Redis is away (nothing counted there). */
  async #fleetAcquire(checks: readonly ConnCheck[]): Promise<{ outcome: ConnOutcome } | null> {
    const member = this.#joined();
    if (member !== null) {
      const keys = this.#keysFor(member.config.keyPrefix);
      const prefix = keys.keyPrefix;
      const args: (string | number | Buffer)[] = checks.map((c) => keys.key('conn', c.zone.name, c.key));
      args.push(keys.memberPrefix, member.id, ...checks.map((c) => c.conn));
      const connection = member.connection!;
      const run = connection.script('sluiceLimitConnAcquire', checks.length, LIMIT_CONN_ACQUIRE_SCRIPT);
      // Sent on a ready connection, a command that then times out may still run in Redis.
      const sent = connection.client.status === 'ready';
      const reply = await run(...args);
      if (typeof reply === 'number') {
        this.#answered();
        if (reply >= 0) return { outcome: { ok: false, index: reply, full: false } };
        for (const c of checks) this.#remote.set(c, { hold: c, keyPrefix: prefix, member: member.id });
        return { outcome: { ok: true } };
      }
      // The request counts locally instead; holds the script may have taken are given back once
      // Redis answers again (at worst one hold of this member too many is released: the fleet
      // then admits one more, never fewer), so a slow moment never keeps slots taken for good.
      if (sent) for (const c of checks) this.#unreleased.push({ hold: c, keyPrefix: prefix, member: member.id });
    }
    this.#fellBack(checks, fallbackReason(this.#member()));
    return null;
  }

  /** Each hold goes back where it was counted: Redis or the local store. */
  release(holds: readonly ConnHold[]): void {
    let local: ConnHold[] | null = null;
    for (const h of holds) {
      const r = this.#remote.get(h);
      if (r === undefined) {
        (local ??= []).push(h);
        continue;
      }
      this.#remote.delete(h);
      void this.#releaseRemote(r);
    }
    if (local !== null) this.#local.release(local);
  }

  async #releaseRemote(r: RemoteHold): Promise<void> {
    const member = this.#member();
    const connection = member?.connection ?? null;
    if (connection === null) return;
    const run = connection.script('sluiceLimitConnRelease', 1, LIMIT_CONN_RELEASE_SCRIPT);
    const reply = await run(this.#keysFor(r.keyPrefix).key('conn', r.hold.zone.name, r.hold.key), r.member);
    // Not taken: tried again after Redis's next answer (a Redis that restarted has lost the hold anyway).
    if (reply === null) this.#unreleased.push(r);
  }
}
