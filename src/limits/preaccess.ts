/**
 * nginx's preaccess phase for limits: limit_req, then limit_conn (nginx runs its phase handlers
 * in reverse module order, and ngx_http_limit_req_module comes after ngx_http_limit_conn_module),
 * after realip and the rewrite phases, before access. Each runs once per request
 * (r->main->limit_*_status), with nginx's keys, log lines and statuses; dry run logs and passes.
 */
import type { LimitZone, LogLevel, Settings } from '../config/types.js';
import type { ErrorLog } from '../observability/error-log.js';
import { logContext } from '../proxy/context/log-context.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import type { Variables } from '../proxy/context/variables.js';
import type { ConnCheck, ReqCheck } from './limit-store.js';
import { countLimitConn, countLimitReq } from './limit-figures.js';
import type { LimitZones } from './limit-zones.js';
import { RequestLimits } from './request-limits.js';

/** What the phase needs from the runtime. */
export interface LimitHost {
  readonly vars: Variables;
  readonly limitZones: LimitZones;
  errorLog(settings: Settings | null): ErrorLog;
}

/** What the phase decided: go on, answer with this status, or nothing (the request ended meanwhile). */
export type PreaccessResult = { readonly kind: 'continue' } | { readonly kind: 'reject'; readonly status: number } | null;

const CONTINUE: PreaccessResult = { kind: 'continue' };

/** True when the level has a limit this request has not been through yet. */
export function preaccessPending(settings: Settings, ctx: RequestContext): boolean {
  const l = settings.limits;
  if (l.req.length === 0 && l.conn.length === 0) return false;
  const done = ctx.limits;
  return done === null || (l.req.length > 0 && done.reqStatus === undefined) || (l.conn.length > 0 && done.connStatus === undefined);
}

/** nginx's `%ui.%03ui` of milli-requests. */
function milli(excess: number): string {
  return `${Math.floor(excess / 1000)}.${String(excess % 1000).padStart(3, '0')}`;
}

/** ngx_http_limit_req_merge_conf: delays log one level below limiting, info stays info. */
const DELAY_LEVEL: Readonly<Record<string, LogLevel>> = { error: 'warn', warn: 'notice', notice: 'info', info: 'info' };

/**
 * The zone's key for this request, or null when it is not counted: an empty value, or one over
 * the module's limit (limit_req 65535 bytes, limit_conn 255), which nginx logs and skips.
 */
function keyOf(host: LimitHost, zone: LimitZone, ctx: RequestContext, max: number, log: ErrorLog): string | null {
  const key = host.vars.evaluate(zone.key, ctx);
  if (key === '') return null;
  if (Buffer.byteLength(key, 'latin1') <= max) return key;
  log.log('error', `the value of the "${zone.keyText}" key is more than ${max} bytes: "${key}"${logContext(ctx)}`, ctx.conn.id);
  return null;
}

/** ngx_http_limit_req_handler. */
async function limitReq(host: LimitHost, settings: Settings, ctx: RequestContext, limits: RequestLimits): Promise<PreaccessResult> {
  const l = settings.limits;
  const log = host.errorLog(settings);
  const checks: ReqCheck[] = [];
  for (let i = 0; i < l.req.length; i++) {
    const rule = l.req[i]!;
    const { zone, ref } = host.limitZones.get(rule.zone);
    const key = keyOf(host, zone, ctx, 65535, log);
    if (key !== null) checks.push({ zone: ref, key, burst: rule.burst, delay: rule.delay, last: i === l.req.length - 1 });
  }
  if (checks.length === 0) return CONTINUE;
  const r = await host.limitZones.store.limitReq(checks);
  if (limits.ended) return null;
  const dry = l.reqDryRun;
  if (r.rc === 'declined') return CONTINUE;
  if (r.rc === 'busy' || r.rc === 'error') {
    const zone = checks[r.index]!.zone.name;
    if (r.rc === 'busy') log.log(l.reqLogLevel, `limiting requests${dry ? ', dry run' : ''}, excess: ${milli(r.excess)} by zone "${zone}"${logContext(ctx)}`, ctx.conn.id);
    else log.log('alert', `could not allocate node in limit_req zone "${zone}"`);
    limits.reqStatus = dry ? 'REJECTED_DRY_RUN' : 'REJECTED';
    countLimitReq(zone, limits.reqStatus);
    return dry ? CONTINUE : { kind: 'reject', status: l.reqStatus };
  }
  for (let i = 0; i < checks.length; i++) if (r.delay === 0 || i !== r.index) countLimitReq(checks[i]!.zone.name, 'PASSED');
  if (r.delay === 0) {
    limits.reqStatus = 'PASSED';
    return CONTINUE;
  }
  const zone = checks[r.index]!.zone.name;
  log.log(DELAY_LEVEL[l.reqLogLevel] ?? 'warn', `delaying request${dry ? ', dry run' : ''}, excess: ${milli(r.excess)}, by zone "${zone}"${logContext(ctx)}`, ctx.conn.id);
  if (dry) {
    limits.reqStatus = 'DELAYED_DRY_RUN';
    countLimitReq(zone, limits.reqStatus);
    return CONTINUE;
  }
  limits.reqStatus = 'DELAYED';
  countLimitReq(zone, limits.reqStatus);
  return (await limits.delay(r.delay)) ? CONTINUE : null;
}

/** ngx_http_limit_conn_handler: the counts are held until the request ends (RequestLimits.end). */
async function limitConn(host: LimitHost, settings: Settings, ctx: RequestContext, limits: RequestLimits): Promise<PreaccessResult> {
  const l = settings.limits;
  const log = host.errorLog(settings);
  const checks: ConnCheck[] = [];
  for (const rule of l.conn) {
    const { zone, ref } = host.limitZones.get(rule.zone);
    const key = keyOf(host, zone, ctx, 255, log);
    if (key !== null) checks.push({ zone: ref, key, conn: rule.conn });
  }
  if (checks.length === 0) return CONTINUE;
  limits.connStatus = 'PASSED';
  const store = host.limitZones.store;
  const r = await store.acquire(checks);
  if (r.ok) {
    for (const c of checks) countLimitConn(c.zone.name, 'PASSED');
    limits.hold(store, checks);
    return limits.ended ? null : CONTINUE;
  }
  const dry = l.connDryRun;
  const zone = checks[r.index]!.zone.name;
  if (r.full) log.log('crit', `ngx_slab_alloc() failed: no memory in limit_conn_zone "${zone}"`);
  else log.log(l.connLogLevel, `limiting connections${dry ? ', dry run,' : ''} by zone "${zone}"${logContext(ctx)}`, ctx.conn.id);
  countLimitConn(zone, dry ? 'REJECTED_DRY_RUN' : 'REJECTED');
  if (limits.ended) return null;
  limits.connStatus = dry ? 'REJECTED_DRY_RUN' : 'REJECTED';
  return dry ? CONTINUE : { kind: 'reject', status: l.connStatus };
}

/** The limits of `settings` for this request, in nginx's order. */
export async function runPreaccess(host: LimitHost, settings: Settings, ctx: RequestContext): Promise<PreaccessResult> {
  const limits = (ctx.limits ??= new RequestLimits());
  if (settings.limits.req.length > 0 && limits.reqStatus === undefined) {
    const r = await limitReq(host, settings, ctx, limits);
    if (r === null || r.kind === 'reject') return r;
  }
  if (settings.limits.conn.length > 0 && limits.connStatus === undefined) return limitConn(host, settings, ctx, limits);
  return CONTINUE;
}
