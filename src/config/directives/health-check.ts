/**
 * Active health checks in nginx Plus syntax (ngx_http_upstream_hc_module): `health_check` in a
 * location that proxies, and `match NAME { ... }` in http. A health_check attaches to the
 * upstream its location's proxy_pass names; resolve.ts does that once every upstream is known.
 */
import { parsePort } from '../address.js';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { HealthCheckDraft, Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { MatchConfig, MatchHeaderTest } from '../types.js';
import { parseDuration, parseNumber } from '../units.js';
import { TAKE1, type DirectiveSpec } from './table.js';

/** Defaults of `health_check` (nginx Plus), ms for durations. */
export const HEALTH_CHECK_DEFAULTS = {
  interval: 5000,
  jitter: 0,
  fails: 1,
  passes: 1,
  uri: '/',
  type: 'http',
} as const;

/** nginx Plus `health_check` parameters Sluice does not implement, with why. */
const UNIMPLEMENTED_PARAMS: ReadonlyMap<string, string> = new Map([
  ['mandatory', 'new servers take traffic at once; remove "mandatory"'],
  ['persistent', 'it only qualifies "mandatory"; remove "persistent"'],
  ['keepalive_time', 'each probe uses a new connection; remove the parameter'],
  ['grpc_service', 'there are no gRPC probes; remove the parameter'],
  ['grpc_status', 'there are no gRPC probes; remove the parameter'],
]);

const HEALTH_CHECK_PARAMS =
  'health_check parameters are interval=TIME, jitter=TIME, fails=N, passes=N, uri=URI, port=N, type=http|websocket|tcp and match=NAME';

/** A request target: starts with "/", no spaces or control characters. */
const PROBE_URI = /^\/[^\s\x00-\x1f\x7f]*$/;

function healthCheck(d: Directive, scope: Scope, cx: BuildContext): void {
  const check: { -readonly [K in keyof HealthCheckDraft]: HealthCheckDraft[K] } = {
    interval: HEALTH_CHECK_DEFAULTS.interval, jitter: HEALTH_CHECK_DEFAULTS.jitter, fails: HEALTH_CHECK_DEFAULTS.fails,
    passes: HEALTH_CHECK_DEFAULTS.passes, uri: HEALTH_CHECK_DEFAULTS.uri, port: null, type: HEALTH_CHECK_DEFAULTS.type,
    match: null, loc: locOf(d),
  };
  let ok = true;
  let uriParam: string | null = null;
  let matchParam: string | null = null;
  const invalid = (param: string, hint: string): void => {
    cx.problem(`invalid parameter "${param}"`, d, hint);
    ok = false;
  };
  for (const param of d.args) {
    const eq = param.indexOf('=');
    const key = eq < 0 ? param : param.slice(0, eq);
    const value = eq < 0 ? null : param.slice(eq + 1);
    const why = UNIMPLEMENTED_PARAMS.get(key);
    if (why !== undefined) {
      cx.problem(`the "${key}" parameter of the "health_check" directive is not implemented`, d, why);
      ok = false;
    } else if (value === null) {
      invalid(param, HEALTH_CHECK_PARAMS);
    } else if (key === 'interval' || key === 'jitter') {
      const t = parseDuration(value);
      if (t === null || (key === 'interval' && t === 0)) {
        invalid(param, `${key} is a duration such as 5s or 500ms${key === 'interval' ? ', more than 0' : ''}`);
      } else {
        check[key] = t;
      }
    } else if (key === 'fails' || key === 'passes') {
      const n = parseNumber(value);
      if (n === null || n === 0) invalid(param, `${key} is a whole number, 1 or more`);
      else check[key] = n;
    } else if (key === 'uri') {
      if (!PROBE_URI.test(value)) invalid(param, 'uri is a path such as /health (starting with "/", no spaces)');
      else check.uri = value;
      uriParam = param;
    } else if (key === 'port') {
      const port = parsePort(value, false);
      if (port === null) invalid(param, 'port is 1 to 65535');
      else check.port = port;
    } else if (key === 'type') {
      if (value === 'grpc') {
        cx.problem('the "type=grpc" parameter of the "health_check" directive is not implemented', d,
          'use type=http (the default), type=websocket or type=tcp');
        ok = false;
      } else if (value !== 'http' && value !== 'websocket' && value !== 'tcp') {
        invalid(param, 'type is http (the default), websocket or tcp');
      } else {
        check.type = value;
      }
    } else if (key === 'match') {
      if (value === '') invalid(param, 'match names a "match NAME { ... }" block in http {}');
      else check.match = value;
      matchParam = param;
    } else {
      invalid(param, HEALTH_CHECK_PARAMS);
    }
  }
  if (check.type === 'tcp') {
    // A tcp probe only connects: there is no request to send a URI in, nor a response to match.
    for (const param of [uriParam, matchParam]) {
      if (param === null) continue;
      cx.problem(`the "${param.slice(0, param.indexOf('='))}" parameter cannot be used with "type=tcp"`, d,
        `a tcp check only opens a connection; remove "${param}" or use type=http`);
      ok = false;
    }
  }
  if (ok) scope.location!.healthChecks.push(check);
}

/** Status codes a `match` may test (RFC 9110 section 15: three digits, 1xx to 5xx). */
function parseStatus(text: string): readonly [number, number] | null {
  const m = /^([1-5][0-9][0-9])(?:-([1-5][0-9][0-9]))?$/.exec(text);
  if (m === null) return null;
  const low = Number(m[1]);
  const high = m[2] === undefined ? low : Number(m[2]);
  return low <= high ? [low, high] : null;
}

interface MatchBuilder {
  readonly status: { negate: boolean; ranges: (readonly [number, number])[] }[];
  readonly headers: MatchHeaderTest[];
  readonly body: { negate: boolean; regex: RegExp }[];
}

const MATCH_TESTS = 'a match block holds "status ...;", "header ...;" and "body ~|!~ REGEX;" tests';

function matchTest(m: MatchBuilder, e: Directive, cx: BuildContext): void {
  if (e.block !== null) {
    cx.problem('unexpected "{"', e);
    return;
  }
  const arity = (hint: string): void => cx.problem(`invalid number of arguments in "${e.name}" directive`, e, hint);
  switch (e.name) {
    case 'status': {
      const negate = e.args[0] === '!';
      const codes = negate ? e.args.slice(1) : e.args;
      if (codes.length === 0) return arity('write "status 200;", "status 200-399;" or "status ! 500;"');
      const ranges: (readonly [number, number])[] = [];
      for (const code of codes) {
        const range = parseStatus(code);
        if (range === null) {
          cx.problem(`invalid parameter "${code}"`, e,
            code.startsWith('!') ? 'write "!" apart from the codes: "status ! 500;"' : 'a status is a code 100-599 or a range such as 200-399');
          return;
        }
        ranges.push(range);
      }
      m.status.push({ negate, ranges });
      return;
    }
    case 'header': {
      const forms = 'write "header NAME;", "header ! NAME;" or "header NAME =|!=|~|!~ VALUE;"';
      const args = e.args;
      if (args.length === 1) {
        if (args[0] === '!') return arity(forms);
        m.headers.push({ name: args[0]!, op: 'present' });
        return;
      }
      if (args.length === 2) {
        if (args[0] !== '!') return arity(forms);
        m.headers.push({ name: args[1]!, op: 'absent' });
        return;
      }
      if (args.length !== 3) return arity(forms);
      const [name, op, value] = args as [string, string, string];
      if (op === '=' || op === '!=') {
        m.headers.push({ name, op, value });
      } else if (op === '~' || op === '!~') {
        const regex = cx.regex(value, false, e);
        if (regex !== null) m.headers.push({ name, op, regex });
      } else {
        cx.problem(`invalid parameter "${op}"`, e, 'header tests are =, !=, ~ and !~');
      }
      return;
    }
    case 'body': {
      if (e.args.length !== 2) return arity('write "body ~ REGEX;" or "body !~ REGEX;"');
      const [op, source] = e.args as [string, string];
      if (op !== '~' && op !== '!~') {
        cx.problem(`invalid parameter "${op}"`, e, 'body tests are ~ and !~');
        return;
      }
      const regex = cx.regex(source, false, e);
      if (regex !== null) m.body.push({ negate: op === '!~', regex });
      return;
    }
    case 'require':
      cx.problem('the "require" test of the "match" block is not implemented', e, 'test the response with status, header and body instead');
      return;
    default:
      cx.problem(`unknown directive "${e.name}"`, e, MATCH_TESTS);
  }
}

export const healthCheckDirectives: readonly DirectiveSpec[] = [
  { name: 'health_check', contexts: ['location'], args: [0, Number.POSITIVE_INFINITY], repeatable: true, handle: healthCheck },
  {
    name: 'match', contexts: ['http'], args: TAKE1, block: 'own', repeatable: true,
    handle(d, scope, cx) {
      const name = d.args[0]!;
      const m: MatchBuilder = { status: [], headers: [], body: [] };
      for (const e of d.block ?? []) matchTest(m, e, cx);
      const matches = scope.http!.matches;
      const previous = matches.get(name);
      if (previous !== undefined) {
        cx.problem(`duplicate match "${name}"`, d,
          `${previous.loc.file}:${previous.loc.line} already defines it; match names must be unique`);
        return;
      }
      const config: MatchConfig = { name, status: m.status, headers: m.headers, body: m.body, loc: locOf(d) };
      matches.set(name, config);
    },
  },
];
