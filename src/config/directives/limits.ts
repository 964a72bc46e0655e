/**
 * ngx_http_limit_conn_module and ngx_http_limit_req_module: the zones (`limit_conn_zone`,
 * `limit_req_zone`, http only) and the limits that use them, with nginx's argument checks and
 * messages (ngx_http_limit_conn_zone, ngx_http_limit_req_zone, ngx_http_limit_req). The zones
 * live at run time in a store (src/limits/); whether each limit names a zone of its kind is
 * checked once every zone line has been seen (resolve.ts, {@link checkLimitZones}).
 */
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { HttpDraft, Scope, SettingsDraft } from '../draft.js';
import type { Directive } from '../parser.js';
import type { LimitSettings, LimitZone, LogLevel, Settings } from '../types.js';
import { parseNumber, parseSize } from '../units.js';
import { HTTP_SERVER_LOCATION, TAKE1, TAKE2, parseEnum, parseFlag, settingsOf, type Arity, type DirectiveSpec } from './table.js';

const TAKE123: Arity = [1, 3];
/** The zones' arguments, plus Sluice's trailing `fleet`. */
const TAKE23: Arity = [2, 3];
const TAKE34: Arity = [3, 4];

/** nginx's smallest shared memory zone: 8 pages of 4 KiB (ngx_http_limit_*_zone). */
export const MIN_ZONE_SIZE = 8 * 4096;

/** `nodelay`: nginx's delay of NGX_MAX_INT_T_VALUE / 1000 requests, i.e. never delayed. */
const NO_DELAY = Number.MAX_SAFE_INTEGER;

export const LIMIT_DEFAULTS: LimitSettings = {
  conn: [], connStatus: 503, connLogLevel: 'error', connDryRun: false,
  req: [], reqStatus: 503, reqLogLevel: 'error', reqDryRun: false,
};

/** ngx_http_limit_*_log_levels: the levels a limit may log at. */
const LIMIT_LOG_LEVELS = ['info', 'notice', 'warn', 'error'] as const;

function limitsOf(scope: Scope): NonNullable<SettingsDraft['limits']> {
  return (settingsOf(scope).limits ??= {});
}

function httpOf(scope: Scope): HttpDraft {
  if (scope.http === null) throw new Error('internal: a zone line outside http');
  return scope.http;
}

/** `zone=NAME:SIZE`: the name and size, or null after nginx's message. */
function zoneParameter(d: Directive, arg: string, cx: BuildContext): { name: string; size: number } | null {
  const spec = arg.slice(5);
  const colon = spec.indexOf(':');
  const size = colon < 0 ? null : parseSize(spec.slice(colon + 1));
  if (colon < 0 || size === null) {
    cx.problem(`invalid zone size "${arg}"`, d, `write the zone as "zone=NAME:SIZE", e.g. "zone=perip:10m"`);
    return null;
  }
  if (size < MIN_ZONE_SIZE) {
    cx.problem(`zone "${arg}" is too small`, d, `a zone needs at least ${MIN_ZONE_SIZE / 1024}k (8 pages), e.g. "zone=${spec.slice(0, colon)}:1m"`);
    return null;
  }
  return { name: spec.slice(0, colon), size };
}

/**
 * `rate=Nr/s` or `rate=Nr/m` (a bare number is per second) in milli-requests per second, as
 * nginx keeps it (`rate * 1000 / scale`, integer division).
 */
function rateParameter(d: Directive, arg: string, cx: BuildContext): number | null {
  let text = arg.slice(5);
  let scale = 1;
  if (text.endsWith('r/s')) text = text.slice(0, -3);
  else if (text.endsWith('r/m')) {
    text = text.slice(0, -3);
    scale = 60;
  }
  const n = parseNumber(text);
  if (n === null || n <= 0) {
    cx.problem(`invalid rate "${arg}"`, d, 'write the rate as "rate=10r/s" or "rate=30r/m"');
    return null;
  }
  return Math.floor((n * 1000) / scale);
}

/** Records a zone; nginx's messages for a name already taken (by a key, a size or the other module). */
function addZone(d: Directive, scope: Scope, cx: BuildContext, zone: LimitZone): void {
  const zones = httpOf(scope).limitZones;
  const known = zones.get(zone.name);
  if (known === undefined) {
    zones.set(zone.name, zone);
    return;
  }
  if (known.kind !== zone.kind) {
    cx.problem(`the shared memory zone "${zone.name}" is already declared for a different use`, d, `give this zone another name`);
  } else if (known.size !== zone.size) {
    cx.problem(`the size ${zone.size} of shared memory zone "${zone.name}" conflicts with already declared size ${known.size}`, d, `give this zone another name`);
  } else {
    cx.problem(`${d.name} "${zone.name}" is already bound to key "${known.keyText}"`, d, `give this zone another name`);
  }
}

function zoneDirective(d: Directive, scope: Scope, cx: BuildContext): void {
  const kind = d.name === 'limit_conn_zone' ? 'conn' : 'req';
  const key = cx.complex(d.args[0]!, d);
  let zone: { name: string; size: number } | null = null;
  let rate = 1000;
  let fleet = false;
  for (const arg of d.args.slice(1)) {
    if (arg === 'fleet') {
      // Sluice: counted in the fleet's Redis (src/limits/fleet-store.ts); resolve.ts checks that `fleet` is configured.
      fleet = true;
    } else if (arg.startsWith('zone=')) {
      zone = zoneParameter(d, arg, cx);
      if (zone === null) return;
    } else if (kind === 'req' && arg.startsWith('rate=')) {
      const r = rateParameter(d, arg, cx);
      if (r === null) return;
      rate = r;
    } else {
      cx.problem(`invalid parameter "${arg}"`, d);
      return;
    }
  }
  if (zone === null) {
    cx.problem(`"${d.name}" must have "zone" parameter`, d, `add "zone=NAME:SIZE", e.g. "zone=perip:10m"`);
    return;
  }
  if (key === null) return;
  addZone(d, scope, cx, { kind, name: zone.name, key, keyText: d.args[0]!, size: zone.size, rate: kind === 'req' ? rate : 0, ...(fleet ? { fleet: true as const } : {}), at: locOf(d) });
}

/** A zone reference, checked at the end: a zone may be defined after the limit that uses it. */
function reference(scope: Scope, zone: string, kind: 'conn' | 'req', d: Directive): void {
  httpOf(scope).limitRefs.push({ zone, kind, at: locOf(d) });
}

function limitConn(d: Directive, scope: Scope, cx: BuildContext): void {
  const limits = limitsOf(scope);
  const zone = d.args[0]!;
  const conn = limits.conn ??= [];
  if (conn.some((r) => r.zone === zone)) {
    cx.problem(`"limit_conn" directive is duplicate`, d, `one limit per zone at a level; remove one of the lines`);
    return;
  }
  const n = parseNumber(d.args[1]!);
  if (n === null || n <= 0) {
    cx.problem(`invalid number of connections "${d.args[1]!}"`, d);
    return;
  }
  if (n > 65535) {
    cx.problem('connection limit must be less 65536', d);
    return;
  }
  reference(scope, zone, 'conn', d);
  (conn as { zone: string; conn: number }[]).push({ zone, conn: n });
}

function limitReq(d: Directive, scope: Scope, cx: BuildContext): void {
  let zone: string | null = null;
  let burst = 0;
  let delay = 0;
  for (const arg of d.args) {
    if (arg.startsWith('zone=')) zone = arg.slice(5);
    else if (arg.startsWith('burst=') || arg.startsWith('delay=')) {
      const n = parseNumber(arg.slice(6));
      if (n === null || n <= 0) {
        cx.problem(`invalid ${arg.slice(0, 5)} value "${arg}"`, d);
        return;
      }
      if (arg.startsWith('burst=')) burst = n;
      else delay = n;
    } else if (arg === 'nodelay') delay = NO_DELAY;
    else {
      cx.problem(`invalid parameter "${arg}"`, d);
      return;
    }
  }
  if (zone === null) {
    cx.problem(`"limit_req" must have "zone" parameter`, d, `add "zone=NAME", the name of a limit_req_zone`);
    return;
  }
  const limits = limitsOf(scope);
  const req = limits.req ??= [];
  if (req.some((r) => r.zone === zone)) {
    cx.problem(`"limit_req" directive is duplicate`, d, `one limit per zone at a level; remove one of the lines`);
    return;
  }
  reference(scope, zone, 'req', d);
  // nginx keeps burst and delay in milli-requests, as the excess it compares them with.
  (req as { zone: string; burst: number; delay: number }[]).push({ zone, burst: burst * 1000, delay: delay === NO_DELAY ? NO_DELAY : delay * 1000 });
}

/** `limit_*_status CODE`: nginx's number slot with its 400..599 bounds. */
function statusDirective(key: 'connStatus' | 'reqStatus'): DirectiveSpec['handle'] {
  return (d, scope, cx) => {
    const n = parseNumber(d.args[0]!);
    if (n === null) {
      cx.problem(`"${d.name}" directive invalid number`, d);
      return;
    }
    if (n < 400 || n > 599) {
      cx.problem('value must be between 400 and 599', d);
      return;
    }
    limitsOf(scope)[key] = n;
  };
}

function logLevelDirective(key: 'connLogLevel' | 'reqLogLevel'): DirectiveSpec['handle'] {
  return (d, scope, cx) => {
    const v = parseEnum<LogLevel>(d, d.args[0]!, LIMIT_LOG_LEVELS, cx);
    if (v !== null) limitsOf(scope)[key] = v;
  };
}

function dryRunDirective(key: 'connDryRun' | 'reqDryRun'): DirectiveSpec['handle'] {
  return (d, scope, cx) => {
    const v = parseFlag(d, cx);
    if (v !== null) limitsOf(scope)[key] = v;
  };
}

export const limitDirectives: readonly DirectiveSpec[] = [
  { name: 'limit_conn_zone', contexts: ['http'], args: TAKE23, repeatable: true, handle: zoneDirective },
  { name: 'limit_req_zone', contexts: ['http'], args: TAKE34, repeatable: true, handle: zoneDirective },
  { name: 'limit_conn', contexts: HTTP_SERVER_LOCATION, args: TAKE2, repeatable: true, handle: limitConn },
  { name: 'limit_req', contexts: HTTP_SERVER_LOCATION, args: TAKE123, repeatable: true, handle: limitReq },
  { name: 'limit_conn_status', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: statusDirective('connStatus') },
  { name: 'limit_req_status', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: statusDirective('reqStatus') },
  { name: 'limit_conn_log_level', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: logLevelDirective('connLogLevel') },
  { name: 'limit_req_log_level', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: logLevelDirective('reqLogLevel') },
  { name: 'limit_conn_dry_run', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: dryRunDirective('connDryRun') },
  { name: 'limit_req_dry_run', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: dryRunDirective('reqDryRun') },
];

/**
 * Once every line has been seen: each limit names a zone of its own kind (nginx: a zone used and
 * never defined has size zero; one defined by the other module is "for a different use"), and no
 * zone name is also an upstream's `zone` (one shared memory namespace in nginx).
 */
export function checkLimitZones(http: HttpDraft, upstreamZones: ReadonlyMap<string, number>, cx: BuildContext): void {
  for (const z of http.limitZones.values()) {
    if (upstreamZones.has(z.name)) cx.problem(`the shared memory zone "${z.name}" is already declared for a different use`, z.at, `an upstream's "zone" has this name; give one of them another`);
  }
  const undefinedZones = new Set<string>();
  for (const ref of http.limitRefs) {
    const z = http.limitZones.get(ref.zone);
    if (z === undefined) {
      if (undefinedZones.has(ref.zone)) continue;
      undefinedZones.add(ref.zone);
      cx.problem(`zero size shared memory zone "${ref.zone}"`, ref.at, `define it in http {}, e.g. "limit_${ref.kind}_zone $binary_remote_addr zone=${ref.zone}:10m${ref.kind === 'req' ? ' rate=10r/s' : ''};"`);
    } else if (z.kind !== ref.kind) {
      cx.problem(`the shared memory zone "${ref.zone}" is already declared for a different use`, ref.at, `"${ref.zone}" is a limit_${z.kind}_zone; limit_${ref.kind} needs a limit_${ref.kind}_zone`);
    }
  }
}

/** True when a level limits anything (so routing needs the preaccess phase there). */
export function hasLimits(settings: Settings): boolean {
  return settings.limits.req.length > 0 || settings.limits.conn.length > 0;
}
