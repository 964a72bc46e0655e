/**
 * ngx_http_upstream_module (`upstream`, `server`) and the keepalive module (`keepalive`,
 * `keepalive_timeout`, `keepalive_requests`). Balancing methods and other server parameters are
 * listed in PLANNED_SERVER_PARAMS / nginx-directives.ts until they are implemented: add a table
 * entry here and delete the planned line.
 */
import { splitHostPort } from '../address.js';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Scope, UpstreamDraft } from '../draft.js';
import type { Directive } from '../parser.js';
import { parseDuration, parseNumber } from '../units.js';
import { ONE_OR_MORE, TAKE1, type DirectiveSpec } from './table.js';

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
} as const;

/** `server` parameters nginx has and Sluice does not implement yet. */
const PLANNED_SERVER_PARAMS = ['max_conns', 'slow_start', 'resolve', 'route', 'service', 'drain'];

function upstreamServer(d: Directive, scope: Scope, cx: BuildContext): void {
  const upstream = scope.upstream!;
  upstream.serverLines++;
  const text = d.args[0]!;
  const r = splitHostPort(text);
  if (!r.ok) {
    if (r.error === 'unix') {
      cx.problem(`unix domain sockets are not supported in upstream "${text}"`, d, 'use HOST:PORT');
    } else {
      cx.problem(`${r.error} in upstream "${text}"`, d,
        text.includes('://') ? 'write the address without a scheme: HOST[:PORT]' : 'the address is HOST[:PORT] or [IPv6]:PORT');
    }
    return;
  }
  let weight: number = UPSTREAM_DEFAULTS.weight;
  let maxFails: number = UPSTREAM_DEFAULTS.maxFails;
  let failTimeout: number = UPSTREAM_DEFAULTS.failTimeout;
  let backup = false;
  let down = false;
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
    } else if (param === 'backup') {
      backup = true;
    } else if (param === 'down') {
      down = true;
    } else if (PLANNED_SERVER_PARAMS.includes(name)) {
      cx.problem(`the "${name}" parameter of the upstream "server" directive is not implemented yet`, d,
        `"${name}" is not implemented yet; remove "${param}" for now`);
      ok = false;
    } else {
      invalid('server parameters are weight=N, max_fails=N, fail_timeout=TIME, backup and down');
    }
  }
  if (!ok) return;
  upstream.servers.push({
    name: text, host: r.value.host, port: r.value.port ?? 80, weight, maxFails, failTimeout, backup, down, at: locOf(d),
  });
}

export const upstreamDirectives: readonly DirectiveSpec[] = [
  {
    name: 'upstream', contexts: ['http'], args: TAKE1, block: 'children', repeatable: true,
    handle(d, scope, cx): Scope {
      const http = scope.http!;
      const name = d.args[0]!;
      const upstream: UpstreamDraft = {
        name, servers: [], serverLines: 0, keepalive: UPSTREAM_DEFAULTS.keepalive, keepaliveTimeout: UPSTREAM_DEFAULTS.keepaliveTimeout,
        keepaliveRequests: UPSTREAM_DEFAULTS.keepaliveRequests, at: locOf(d),
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
      if (body.upstream!.serverLines === 0) {
        cx.problem('no servers are inside upstream', { file: d.file, line: d.endLine },
          `add at least one "server HOST:PORT;" line to upstream "${d.args[0]!}"`);
      }
    },
  },
  { name: 'server', contexts: ['upstream'], args: ONE_OR_MORE, repeatable: true, handle: upstreamServer },
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
