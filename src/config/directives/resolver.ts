/**
 * `resolver` and `resolver_timeout` (ngx_http_core_module, and in `upstream` since nginx 1.27.3):
 * the DNS servers that names are resolved with at run time, for proxy_pass with variables and
 * `server ... resolve`. Parsed as nginx's ngx_resolver_create does, with its messages.
 */
import { isIP } from 'node:net';
import { splitHostPort } from '../address.js';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Directive } from '../parser.js';
import type { ResolverConfig, SockAddr } from '../types.js';
import { parseDuration } from '../units.js';
import { ONE_OR_MORE, TAKE1, type DirectiveSpec } from './table.js';

/** nginx's port for a name server written without one. */
const DNS_PORT = 53;

function onOff(value: string): boolean | null {
  return value === 'on' ? true : value === 'off' ? false : null;
}

/** The arguments of a `resolver` line, or null after reporting the first problem (nginx stops there). */
function parseResolver(d: Directive, cx: BuildContext): ResolverConfig | null {
  const servers: SockAddr[] = [];
  let valid: number | null = null;
  let ipv4 = true;
  let ipv6 = true;
  for (const arg of d.args) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? '' : arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    if (key === 'valid') {
      const t = parseDuration(value, true);
      if (t === null) {
        cx.problem(`invalid parameter: ${arg}`, d, 'valid= takes a time such as 10s or 1m');
        return null;
      }
      valid = t;
      continue;
    }
    if (key === 'ipv4' || key === 'ipv6') {
      const v = onOff(value);
      if (v === null) {
        cx.problem(`invalid parameter: ${arg}`, d, `${key}= is "on" or "off"`);
        return null;
      }
      if (key === 'ipv4') ipv4 = v;
      else ipv6 = v;
      continue;
    }
    // nginx Plus's resolver statistics zone: accepted, Sluice's statistics need no zone.
    if (key === 'status_zone') continue;
    const r = splitHostPort(arg);
    if (!r.ok) {
      cx.problem(`${r.error === 'unix' ? 'invalid host' : r.error} in resolver "${arg}"`, d, 'a name server is ADDRESS[:PORT], e.g. 127.0.0.11 or [::1]:53');
      return null;
    }
    const family = isIP(r.value.host);
    if (family === 0) {
      // nginx resolves a name server's name once at load; Sluice takes addresses only.
      cx.problem(`invalid host in resolver "${arg}"`, d, 'write the name server\'s IP address (Sluice does not resolve the resolver\'s own name)');
      return null;
    }
    servers.push({ host: r.value.host, port: r.value.port ?? DNS_PORT, family: family === 6 ? 6 : 4 });
  }
  if (!ipv4 && !ipv6) {
    cx.problem('"ipv4" and "ipv6" cannot both be "off"', d);
    return null;
  }
  if (servers.length === 0) {
    cx.problem('no name servers defined', d, 'give at least one name server address, e.g. "resolver 127.0.0.11;"');
    return null;
  }
  return { servers, valid, ipv4, ipv6, loc: locOf(d) };
}

export const resolverDirectives: readonly DirectiveSpec[] = [
  {
    name: 'resolver', contexts: ['http', 'server', 'location', 'upstream'], args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const r = parseResolver(d, cx);
      if (r === null) return;
      if (scope.upstream && scope.context === 'upstream') scope.upstream.resolver = r;
      else if (scope.settings) scope.settings.resolver = r;
    },
  },
  {
    name: 'resolver_timeout', contexts: ['http', 'server', 'location', 'upstream'], args: TAKE1,
    handle(d, scope, cx) {
      const t = cx.duration(d, d.args[0]!);
      if (t === null) return;
      if (scope.upstream && scope.context === 'upstream') scope.upstream.resolverTimeout = t;
      else if (scope.settings) scope.settings.resolverTimeout = t;
    },
  },
];
