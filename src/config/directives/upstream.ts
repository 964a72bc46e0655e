/**
 * ngx_http_upstream_module (`upstream`, `server`), the keepalive module (`keepalive`,
 * `keepalive_timeout`, `keepalive_requests`) and the zone module (`zone`). The balancing methods
 * and `sticky` are in balancing.ts. Server parameters nginx has and Sluice does not are listed in
 * PLANNED_SERVER_PARAMS until they are implemented.
 */
import { splitHostPort, unixSocketPath } from '../address.js';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Scope, UpstreamDraft } from '../draft.js';
import type { Directive } from '../parser.js';
import { parseDuration, parseNumber, parseSize } from '../units.js';
import { ONE_OR_MORE, TAKE1, TAKE12, type DirectiveSpec } from './table.js';
import { checkRebalance } from './rebalance.js';

/** Defaults of the upstream keepalive module (nginx 1.19.10+). */
export const UPSTREAM_DEFAULTS = {
  keepalive: 0,
  /** ms */
  keepaliveTimeout: 60_000,
  keepaliveRequests: 1000,
  weight: 1,
  maxFails: 1,
  /** ms */
  failTimeout: 10_000,
  /** 0 = no cap */
  maxConns: 0,
  /** ms; 0 = off */
  slowStart: 0,
} as const;

/** `server` parameters nginx has and Sluice does not implement yet. */
const PLANNED_SERVER_PARAMS = ['route', 'service', 'drain'];

/**
 * The smallest `zone` size nginx accepts: 8 memory pages (ngx_http_upstream_zone, with 4 KiB
 * pages). Sluice keeps upstream state in the process, but keeps nginx's check so a config that
 * loads here loads in nginx too.
 */
const MIN_ZONE_SIZE = 8 * 4096;

/** Methods that pick the server from the request, so they take no `backup` or `slow_start` (nginx's upstream flags). */
const KEYED_METHODS: ReadonlySet<string> = new Set(['hash', 'ip_hash', 'random']);

function upstreamServer(d: Directive, scope: Scope, cx: BuildContext): void {
  const upstream = scope.upstream!;
  upstream.serverLines++;
  const text = d.args[0]!;
  const unix = unixSocketPath(text);
  const r = unix === null ? splitHostPort(text) : { ok: true as const, value: { host: '', port: null } };
  if (unix === '') {
    cx.problem(`no path in the unix domain socket "${text}"`, d, 'write the socket as unix:/path/to/socket');
    return;
  }
  if (!r.ok) {
    cx.problem(`${r.error} in upstream "${text}"`, d,
      text.includes('://') ? 'write the address without a scheme: HOST[:PORT]' : 'the address is HOST[:PORT], [IPv6]:PORT or unix:/path');
    return;
  }
  let weight: number = UPSTREAM_DEFAULTS.weight;
  let maxFails: number = UPSTREAM_DEFAULTS.maxFails;
  let failTimeout: number = UPSTREAM_DEFAULTS.failTimeout;
  let backup = false;
  let down = false;
  let maxConns: number = UPSTREAM_DEFAULTS.maxConns;
  let slowStart: number = UPSTREAM_DEFAULTS.slowStart;
  let resolve = false;
  const methodBound: string[] = [];
  let ok = true;
  for (const param of d.args.slice(1)) {
    const eq = param.indexOf('=');
    const name = eq < 0 ? param : param.slice(0, eq);
    const value = eq < 0 ? null : param.slice(eq + 1);
    const invalid = (hint?: string): void => {
      cx.problem(`invalid parameter "${param}"`, d, hint);
      ok = false;
    };
    if (name === 'weight' && value !== null) {
      const n = parseNumber(value);
      if (n === null || n === 0) invalid('weight is a whole number, 1 or more');
      else weight = n;
    } else if (name === 'max_fails' && value !== null) {
      const n = parseNumber(value);
      if (n === null) invalid('max_fails is a whole number (0 disables failure accounting)');
      else maxFails = n;
    } else if (name === 'fail_timeout' && value !== null) {
      const t = parseDuration(value, true);
      if (t === null) invalid('fail_timeout is a duration such as 10s');
      else failTimeout = t;
    } else if (name === 'max_conns' && value !== null) {
      const n = parseNumber(value);
      if (n === null) invalid('max_conns is a whole number of concurrent connections (0 means no limit)');
      else maxConns = n;
    } else if (name === 'slow_start' && value !== null) {
      // nginx Plus parses it in seconds (ngx_parse_time is_sec), like fail_timeout.
      const t = parseDuration(value, true);
      if (t === null) {
        invalid('slow_start is a duration such as 30s (0 turns it off)');
      } else {
        slowStart = t;
        methodBound.push(param);
      }
    } else if (param === 'backup') {
      backup = true;
      methodBound.push(param);
    } else if (param === 'down') {
      down = true;
    } else if (param === 'resolve') {
      // nginx 1.27.3: re-resolved at run time; the zone and resolver are checked once the
      // whole http block is read (resolve.ts), as nginx checks them at init.
      resolve = true;
    } else if (PLANNED_SERVER_PARAMS.includes(name)) {
      cx.problem(`the "${name}" parameter of the upstream "server" directive is not implemented yet`, d,
        `"${name}" is not implemented yet; remove "${param}" for now`);
      ok = false;
    } else {
      invalid('server parameters are weight=N, max_fails=N, fail_timeout=TIME, max_conns=N, slow_start=TIME, backup, down and resolve');
    }
  }
  if (!ok) return;
  if (unix !== null && resolve) {
    cx.problem(`invalid parameter "resolve" for the unix domain socket "${text}"`, d, 'a socket path needs no resolving; remove "resolve"');
    return;
  }
  upstream.servers.push({
    name: text, host: r.value.host, port: r.value.port ?? 80, weight, maxFails, failTimeout, backup, down, maxConns, slowStart,
    resolve, methodBound, at: locOf(d), ...(unix === null ? {} : { unixPath: unix }),
  });
}

/**
 * nginx's "balancing method does not support parameter": hash, ip_hash and random take no
 * `backup` servers, and nginx Plus forbids `slow_start` with them. nginx checks while reading a
 * `server` line, so a method written after the servers slips through there; Sluice checks when
 * the block ends, whatever the order.
 */
function checkMethodParams(upstream: UpstreamDraft, cx: BuildContext): void {
  const method = upstream.method;
  if (method === null || !KEYED_METHODS.has(method.value.name)) return;
  for (const s of upstream.servers) {
    for (const param of s.methodBound) {
      cx.problem(`balancing method does not support parameter "${param}"`, s.at,
        `"${method.directive}" (${method.at.file}:${method.at.line}) picks the server from the request, so it has no `
        + `backup servers and no slow start; remove "${param}", or use round-robin or least_conn`);
    }
  }
}

/** `zone NAME [SIZE]` (ngx_http_upstream_zone). */
function zone(d: Directive, scope: Scope, cx: BuildContext): void {
  const name = d.args[0]!;
  if (name === '') {
    cx.problem(`invalid zone name "${name}"`, d);
    return;
  }
  let size = 0;
  if (d.args.length === 2) {
    const text = d.args[1]!;
    const parsed = parseSize(text);
    if (parsed === null) {
      cx.problem(`invalid zone size "${text}"`, d, 'a size such as 64k or 1m');
      return;
    }
    if (parsed < MIN_ZONE_SIZE) {
      cx.problem(`zone "${name}" is too small`, d, `nginx needs at least 32k; write "zone ${name} 64k;"`);
      return;
    }
    size = parsed;
  }
  scope.upstream!.zone = { name, size, at: locOf(d) };
}

export const upstreamDirectives: readonly DirectiveSpec[] = [
  {
    name: 'upstream', contexts: ['http'], args: TAKE1, block: 'children', repeatable: true,
    handle(d, scope, cx): Scope {
      const http = scope.http!;
      const name = d.args[0]!;
      const upstream: UpstreamDraft = {
        name, servers: [], serverLines: 0, keepalive: UPSTREAM_DEFAULTS.keepalive, keepaliveTimeout: UPSTREAM_DEFAULTS.keepaliveTimeout,
        keepaliveRequests: UPSTREAM_DEFAULTS.keepaliveRequests, method: null, sticky: null, zone: null, at: locOf(d),
      };
      // nginx compares upstream names case-insensitively.
      if (http.upstreams.some((u) => u.name.toLowerCase() === name.toLowerCase())) {
        cx.problem(`duplicate upstream "${name}"`, d, 'upstream names must be unique; rename or merge the blocks');
      } else {
        http.upstreams.push(upstream);
      }
      return { ...scope, context: 'upstream', upstream, settings: null };
    },
    finish(d, body, cx) {
      checkMethodParams(body.upstream!, cx);
      checkRebalance(body.upstream!, cx);
      if (body.upstream!.serverLines === 0) {
        cx.problem('no servers are inside upstream', { file: d.file, line: d.endLine },
          `add at least one "server HOST:PORT;" line to upstream "${d.args[0]!}"`);
      }
    },
  },
  { name: 'server', contexts: ['upstream'], args: ONE_OR_MORE, repeatable: true, handle: upstreamServer },
  { name: 'zone', contexts: ['upstream'], args: TAKE12, handle: zone },
  {
    name: 'keepalive', contexts: ['upstream'], args: TAKE1,
    handle(d, scope, cx) {
      const n = parseNumber(d.args[0]!);
      if (n === null || n === 0) {
        cx.problem(`invalid value "${d.args[0]!}" in "keepalive" directive`, d, 'the number of idle connections to keep, 1 or more');
        return;
      }
      scope.upstream!.keepalive = n;
    },
  },
  {
    name: 'keepalive_timeout', contexts: ['upstream'], args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) scope.upstream!.keepaliveTimeout = v;
    },
  },
  {
    name: 'keepalive_requests', contexts: ['upstream'], args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.number(d, d.args[0]!);
      if (v !== null) scope.upstream!.keepaliveRequests = v;
    },
  },
];
