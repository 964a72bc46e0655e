/**
 * What each limit zone decided in this process, as nginx Plus's API reports it (`limit_reqs`:
 * passed, delayed, rejected, delayed_dry_run, rejected_dry_run; `limit_conns`: passed, rejected,
 * rejected_dry_run). A request's outcome counts in the zone that decided it (the zone that
 * refused or delayed it); a request that passed counts in every zone it was checked against.
 * Counters live for the process (zones keep their names across reloads); workers' add up
 * (stats.ts).
 */
import { dict } from '../observability/stats.js';
import type { LimitConnFigures, LimitReqFigures } from '../observability/stats.js';
import type { LimitConnStatus, LimitReqStatus } from './request-limits.js';

const reqFigures = new Map<string, LimitReqFigures>();
const connFigures = new Map<string, LimitConnFigures>();

function reqZone(zone: string): LimitReqFigures {
  let f = reqFigures.get(zone);
  if (f === undefined) reqFigures.set(zone, f = { passed: 0, delayed: 0, rejected: 0, delayed_dry_run: 0, rejected_dry_run: 0 });
  return f;
}

function connZone(zone: string): LimitConnFigures {
  let f = connFigures.get(zone);
  if (f === undefined) connFigures.set(zone, f = { passed: 0, rejected: 0, rejected_dry_run: 0 });
  return f;
}

export function countLimitReq(zone: string, status: LimitReqStatus): void {
  reqZone(zone)[status.toLowerCase() as Lowercase<LimitReqStatus>]++;
}

export function countLimitConn(zone: string, status: LimitConnStatus): void {
  connZone(zone)[status.toLowerCase() as Lowercase<LimitConnStatus>]++;
}

/** Copies for a stats snapshot. */
export function limitReqFigures(): Record<string, LimitReqFigures> {
  const out = dict<LimitReqFigures>();
  for (const [zone, f] of reqFigures) out[zone] = { ...f };
  return out;
}

export function limitConnFigures(): Record<string, LimitConnFigures> {
  const out = dict<LimitConnFigures>();
  for (const [zone, f] of connFigures) out[zone] = { ...f };
  return out;
}
