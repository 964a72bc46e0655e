/**
 * Limit zones in this process's memory, with nginx's arithmetic (ngx_http_limit_req_module.c and
 * ngx_http_limit_conn_module.c): the leaky bucket in milli-requests, nodes held while the other
 * limits of a request are looked up, the expiry of idle keys, and a capacity in keys that follows
 * from the zone's size as nginx's slab allocator does. The primary of a cluster runs one for
 * every worker (cluster-store.ts).
 */
import type { ConnCheck, ConnHold, ConnOutcome, LimitStore, ReqCheck, ReqOutcome, ZoneRef } from './limit-store.js';
import { zoneId } from './limit-store.js';

/** nginx's page: the slab allocator's unit. */
const PAGE = 4096;
/** Per page, nginx's slab keeps a descriptor (ngx_slab_page_t) and statistics. */
const PAGE_OVERHEAD = 24;
/**
 * Bytes before a key in a node: the rbtree node up to `color` (32 on 64-bit) plus the module's
 * node up to `data` (limit_req: 48, limit_conn: 4).
 */
const NODE_BASE = { req: 32 + 48, conn: 32 + 4 } as const;

/** The slab chunk a node of this many bytes takes: a power of two from 8, whole pages above half a page. */
function slabSize(bytes: number): number {
  if (bytes > PAGE / 2) return Math.ceil(bytes / PAGE) * PAGE;
  let s = 8;
  while (s < bytes) s *= 2;
  return s;
}

/** What a zone of `size` bytes can hold in nodes: its pages, less the first (the tree and the log context). */
function capacityBytes(size: number): number {
  return Math.max(0, Math.floor(size / (PAGE + PAGE_OVERHEAD)) - 1) * PAGE;
}

interface ReqNode {
  /** ms (the store's clock); 0: never accounted (a node made for a limit that is not the last). */
  last: number;
  /** milli-requests */
  excess: number;
  /** Requests between lookup and account (nginx's `count`: such a node is never expired). */
  count: number;
  readonly bytes: number;
}

interface ConnNode {
  conn: number;
  readonly bytes: number;
}

/** A zone's keys in least-recently-used order (a Map's first entry is nginx's queue tail). */
class Zone<N extends { readonly bytes: number }> {
  readonly nodes = new Map<string, N>();
  used = 0;
  readonly capacity: number;
  constructor(readonly ref: ZoneRef) {
    this.capacity = capacityBytes(ref.size);
  }
  fits(bytes: number): boolean {
    return this.used + bytes <= this.capacity;
  }
  add(key: string, node: N): void {
    this.nodes.set(key, node);
    this.used += node.bytes;
  }
  delete(key: string, node: N): void {
    this.nodes.delete(key);
    this.used -= node.bytes;
  }
}

/** nginx's `ms` between now and a node's last account: a clock that went back counts as 0 (or 1 past a minute). */
function elapsed(now: number, last: number): number {
  const ms = now - last;
  if (ms < -60000) return 1;
  return ms < 0 ? 0 : ms;
}

/** The bucket after `ms`, plus this request: `excess - rate * ms / 1000 + 1000`, never below 0 (integer arithmetic). */
function leak(excess: number, rate: number, ms: number): number {
  return Math.max(0, excess - Math.floor((rate * ms) / 1000) + 1000);
}

export class MemoryLimitStore implements LimitStore {
  readonly #req = new Map<string, Zone<ReqNode>>();
  readonly #conn = new Map<string, Zone<ConnNode>>();
  /** ms; nginx's ngx_current_msec (a monotonic clock far from 0). */
  readonly #clock: () => number;

  constructor(clock: () => number = () => Math.floor(performance.timeOrigin + performance.now())) {
    this.#clock = clock;
  }

  #zone<N extends { readonly bytes: number }>(zones: Map<string, Zone<N>>, ref: ZoneRef): Zone<N> {
    const id = zoneId(ref);
    let z = zones.get(id);
    if (z === undefined) zones.set(id, z = new Zone<N>(ref));
    return z;
  }

  /** ngx_http_limit_req_handler's lookups, then ngx_http_limit_req_account. */
  limitReq(checks: readonly ReqCheck[]): ReqOutcome {
    const now = this.#clock();
    const held: (ReqNode | null)[] = [];
    let n = 0;
    let rc: 'declined' | 'again' | 'ok' = 'declined';
    let excess = 0;
    for (; n < checks.length; n++) {
      const c = checks[n]!;
      const zone = this.#zone(this.#req, c.zone);
      const r = this.#lookup(zone, c, now);
      if (r.rc === 'busy' || r.rc === 'error') {
        for (const h of held) if (h !== null) h.count--;
        return r.rc === 'busy' ? { rc: 'busy', index: n, excess: r.excess } : { rc: 'error', index: n };
      }
      excess = r.excess;
      rc = r.rc;
      held.push(r.node);
      if (rc !== 'again') break;
    }
    if (rc === 'declined') return { rc: 'declined' };
    // Every check held its node (none was the level's last limit): all are accounted below.
    if (rc === 'again') return this.#account(checks, held, checks.length, checks.length - 1, 0, now);
    return this.#account(checks, held, n, n, excess, now);
  }

  #lookup(zone: Zone<ReqNode>, c: ReqCheck, now: number): { rc: 'busy' | 'ok' | 'again'; excess: number; node: ReqNode | null } | { rc: 'error' } {
    // The rate is the config's, not the zone's: a reload may change it and keep the zone (as nginx's ctx->rate).
    const rate = c.zone.rate;
    const lr = zone.nodes.get(c.key);
    if (lr !== undefined) {
      // Most recently used last: the Map's order is nginx's queue.
      zone.nodes.delete(c.key);
      zone.nodes.set(c.key, lr);
      // A node no request has accounted yet (last 0): nginx's `now - 0` leaks it empty.
      const ms = lr.last === 0 ? Number.MAX_SAFE_INTEGER : elapsed(now, lr.last);
      const excess = leak(lr.excess, rate, ms);
      if (excess > c.burst) return { rc: 'busy', excess, node: null };
      if (c.last) {
        lr.excess = excess;
        if (ms !== 0) lr.last = now;
        return { rc: 'ok', excess, node: null };
      }
      lr.count++;
      return { rc: 'again', excess, node: lr };
    }
    const bytes = slabSize(NODE_BASE.req + Buffer.byteLength(c.key, 'latin1'));
    this.#expire(zone, 1, now, rate);
    if (!zone.fits(bytes)) {
      this.#expire(zone, 0, now, rate);
      if (!zone.fits(bytes)) return { rc: 'error' };
    }
    const node: ReqNode = c.last ? { last: now, excess: 0, count: 0, bytes } : { last: 0, excess: 0, count: 1, bytes };
    zone.add(c.key, node);
    return { rc: c.last ? 'ok' : 'again', excess: 0, node: c.last ? null : node };
  }

  /**
   * ngx_http_limit_req_account: the nodes held for the checks before `upto` are accounted now;
   * the delay is the largest of `(excess - delay) * 1000 / rate` over the limits, starting with
   * the check at `index` (already accounted, with `first` as its excess).
   */
  #account(checks: readonly ReqCheck[], held: readonly (ReqNode | null)[], upto: number, index: number, first: number, now: number): ReqOutcome {
    let excess = first;
    const limit = checks[index]!;
    let maxDelay = first <= limit.delay ? 0 : Math.floor(((first - limit.delay) * 1000) / limit.zone.rate);
    for (let i = upto - 1; i >= 0; i--) {
      const lr = held[i];
      if (lr === undefined || lr === null) continue;
      const c = checks[i]!;
      // A node made by this request (last 0) has no history: nginx's `now - 0` leaks it empty.
      const ms = lr.last === 0 ? Number.MAX_SAFE_INTEGER : elapsed(now, lr.last);
      const e = leak(lr.excess, c.zone.rate, ms);
      if (ms !== 0) lr.last = now;
      lr.excess = e;
      lr.count--;
      if (e <= c.delay) continue;
      const delay = Math.floor(((e - c.delay) * 1000) / c.zone.rate);
      if (delay > maxDelay) {
        maxDelay = delay;
        excess = e;
        index = i;
      }
    }
    return { rc: 'ok', delay: maxDelay, excess, index };
  }

  /**
   * ngx_http_limit_req_expire: n = 1 drops up to two idle keys (untouched for a minute and leaked
   * empty) from the old end; n = 0 drops the oldest by force first. A key in use stops it.
   */
  #expire(zone: Zone<ReqNode>, n: number, now: number, rate: number): void {
    while (n < 3) {
      const first = zone.nodes.entries().next();
      if (first.done === true) return;
      const [key, lr] = first.value;
      if (lr.count > 0) return;
      if (n++ !== 0) {
        const ms = Math.abs(now - lr.last);
        if (ms < 60000) return;
        if (lr.excess - Math.floor((rate * ms) / 1000) > 0) return;
      }
      zone.delete(key, lr);
    }
  }

  /** ngx_http_limit_conn_handler: each key counted in turn; a refusal releases what this request counted. */
  acquire(checks: readonly ConnCheck[]): ConnOutcome {
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      const zone = this.#zone(this.#conn, c.zone);
      const node = zone.nodes.get(c.key);
      if (node === undefined) {
        const bytes = slabSize(NODE_BASE.conn + Buffer.byteLength(c.key, 'latin1'));
        if (!zone.fits(bytes)) {
          this.release(checks.slice(0, i));
          return { ok: false, index: i, full: true };
        }
        zone.add(c.key, { conn: 1, bytes });
        continue;
      }
      if (node.conn >= c.conn) {
        this.release(checks.slice(0, i));
        return { ok: false, index: i, full: false };
      }
      node.conn++;
    }
    return { ok: true };
  }

  /** ngx_http_limit_conn_cleanup: a key whose count reaches 0 leaves the zone. */
  release(holds: readonly ConnHold[]): void {
    for (const h of holds) {
      const zone = this.#conn.get(zoneId(h.zone));
      const node = zone?.nodes.get(h.key);
      if (zone === undefined || node === undefined) continue;
      if (--node.conn <= 0) zone.delete(h.key, node);
    }
  }

  /** Open counts of a limit_conn key (tests and the status page). */
  connections(zone: ZoneRef, key: string): number {
    return this.#conn.get(zoneId(zone))?.nodes.get(key)?.conn ?? 0;
  }
}
