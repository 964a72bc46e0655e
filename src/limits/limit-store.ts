/**
 * Where limit zones live: one interface, so that a zone is counted in this process
 * (memory-store.ts), by the primary for every worker (cluster-store.ts), or later by a fleet.
 * Each call does one module's whole check for one request atomically (nginx takes the zone's
 * lock per zone; one call for all is at least as exact). Keys are strings of bytes (one
 * character per byte, as `$binary_remote_addr` gives them), never empty.
 */

/** What identifies a zone to its store: a zone whose kind, size or key changes is a new zone. */
export interface ZoneRef {
  readonly name: string;
  readonly kind: 'conn' | 'req';
  /** Bytes (the capacity in keys follows from it, as in nginx's slab). */
  readonly size: number;
  /** The key as written. */
  readonly keyText: string;
  /** limit_req: milli-requests per second; 0 for conn. */
  readonly rate: number;
  /** `... fleet`: counted in the fleet's Redis (fleet-store.ts), this process's store while Redis is away. */
  readonly fleet?: boolean;
}

/** One limit_req of a request: its zone, the key's value, burst and delay in milli-requests. */
export interface ReqCheck {
  readonly zone: ZoneRef;
  readonly key: string;
  readonly burst: number;
  readonly delay: number;
  /** The level's last limit_req: nginx accounts it at once (ngx_http_limit_req_lookup's `account`). */
  readonly last: boolean;
}

/** The outcome of a request's limit_req checks; `index` is into the checks. */
export type ReqOutcome =
  /** No check. */
  | { readonly rc: 'declined' }
  /** Over burst at `index` (excess in milli-requests). */
  | { readonly rc: 'busy'; readonly index: number; readonly excess: number }
  /** The zone at `index` is full and nothing could be expired (nginx: "could not allocate node"). */
  | { readonly rc: 'error'; readonly index: number }
  /** Passed; delay in ms (0: none), with the excess and limit that set it (for the log line). */
  | { readonly rc: 'ok'; readonly delay: number; readonly excess: number; readonly index: number };

/** One limit_conn of a request. */
export interface ConnCheck {
  readonly zone: ZoneRef;
  readonly key: string;
  readonly conn: number;
}

/** A count held for a request until it ends (released with {@link LimitStore.release}). */
export interface ConnHold {
  readonly zone: ZoneRef;
  readonly key: string;
}

export type ConnOutcome =
  | { readonly ok: true }
  /** Refused at `index`: over the limit, or (`full`) the zone has no room for another key. */
  | { readonly ok: false; readonly index: number; readonly full: boolean };

export interface LimitStore {
  limitReq(checks: readonly ReqCheck[]): ReqOutcome | Promise<ReqOutcome>;
  /** Counts every check, or none when one refuses. */
  acquire(checks: readonly ConnCheck[]): ConnOutcome | Promise<ConnOutcome>;
  release(holds: readonly ConnHold[]): void;
}

/** The store's name for a zone instance: a zone keeps its state while all of these stay the same. */
export function zoneId(z: ZoneRef): string {
  return `${z.kind}\u0000${z.name}\u0000${z.size}\u0000${z.keyText}`;
}
