/**
 * ngx_http_core_module: `server`, `listen`, `server_name`, `location`, `keepalive_timeout`,
 * `client_header_timeout`, `client_body_timeout`, `send_timeout`, `default_type`.
 */
import { hostname } from 'node:os';
import { splitHostPort, parsePort } from '../address.js';
import { LISTEN_SOCKET_DEFAULTS } from '../defaults.js';
import { reusePortAvailable } from '../../server/reuseport.js';
import { nativeAddonProblem } from '../../core/native-addon.js';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { LocationDraft, Scope, ServerDraft } from '../draft.js';
import type { Directive } from '../parser.js';
import type { ListenSocketOptions, LocationModifier, ServerName } from '../types.js';
import { parseDuration, parseNumber } from '../units.js';
import { ONE_OR_MORE, TAKE1, TAKE12, HTTP_SERVER_LOCATION, durationSetting, settingsOf, type DirectiveSpec } from './table.js';

/** nginx `listen` parameters Sluice does not implement yet (name before any `=`). */
const PLANNED_LISTEN_PARAMS: ReadonlyMap<string, string> = new Map([
  ['quic', 'HTTP/3 is not implemented yet'],
  ['deferred', 'socket options are not implemented yet'],


  ['rcvbuf', 'socket options are not implemented yet'],
  ['sndbuf', 'socket options are not implemented yet'],
  ['accept_filter', 'socket options are not implemented yet'],
  ['fastopen', 'socket options are not implemented yet'],

  ['setfib', 'socket options are not implemented yet'],
]);


/**
 * A socket parameter of `listen` (ipv6only, backlog, bind, reuseport, so_keepalive): what it sets, false when
 * it was refused (reported), null when `param` is none of them.
 */
function listenSocketOption(param: string, host: string, bad: (err: string, hint?: string) => void): Partial<ListenSocketOptions> | false | null {
  if (param === 'bind') return { bind: true };
  // nginx: reuseport implies bind (a socket per worker cannot be the wildcard's).
  if (param === 'reuseport') return { reuseport: true, bind: true };
  if (param.startsWith('ipv6only=')) {
    const v = param.slice(9);
    if (v !== 'on' && v !== 'off') {
      bad(`invalid ipv6only flags "${v}"`);
      return false;
    }
    // Meaningful on an IPv6 address only (a wildcard [::] in practice); nginx takes it anywhere.
    return host.includes(':') ? { ipv6only: v === 'on', bind: true } : { bind: true };
  }
  if (param.startsWith('backlog=')) {
    const n = parseNumber(param.slice(8));
    if (n === null || n === 0) {
      bad(`invalid backlog "${param.slice(8)}"`);
      return false;
    }
    return { backlog: n, bind: true };
  }
  if (param.startsWith('so_keepalive=')) {
    const v = param.slice(13);
    if (v === 'on' || v === 'off') return { keepalive: { on: v === 'on', idleMs: 0 }, bind: true };
    // IDLE:INTVL:CNT: Node sets the idle time only; the other two keep the system's values.
    const m = /^([^:]*):([^:]*):([^:]*)$/.exec(v);
    const idle = m === null ? null : m[1] === '' ? 0 : parseDuration(m[1]!, true);
    if (m === null || idle === null) {
      bad(`invalid so_keepalive value: "${v}"`, 'use on, off, or IDLE:INTVL:CNT such as "30m::10"');
      return false;
    }
    return { keepalive: { on: true, idleMs: idle }, bind: true };
  }
  return null;
}

function listen(d: Directive, scope: Scope, cx: BuildContext): void {
  const server = scope.server!;
  const text = d.args[0]!;
  const bad = (err: string, hint?: string): void => cx.problem(`${err} in "${text}" of the "listen" directive`, d, hint);
  let host = '0.0.0.0';
  let port = 80;
  if (/^[0-9]+$/.test(text)) {
    const p = parsePort(text, true);
    if (p === null) return bad('invalid port', 'ports are 0 to 65535 (0 picks a free port)');
    port = p;
  } else {
    const r = splitHostPort(text, { allowZeroPort: true, allowWildcard: true });
    if (!r.ok) {
      if (r.error === 'unix') {
        return bad('unix domain sockets are not supported', 'listen on [ADDRESS:]PORT instead');
      }
      return bad(r.error, r.error === 'invalid port' ? 'ports are 0 to 65535 (0 picks a free port)' : undefined);
    }
    host = r.value.host === '*' ? '0.0.0.0' : r.value.host;
    // `localhost` is fixed to 127.0.0.1 so a listener never depends on resolver order.
    if (host.toLowerCase() === 'localhost') host = '127.0.0.1';
    port = r.value.port ?? 80;
  }
  let defaultServer = false;
  let ssl = false;
  let http2 = false;
  let proxyProtocol = false;
  let socket: ListenSocketOptions | undefined;
  const setSocket = (o: Partial<ListenSocketOptions>): void => {
    socket = { ...(socket ?? LISTEN_SOCKET_DEFAULTS), ...o };
  };
  for (const param of d.args.slice(1)) {
    const option = listenSocketOption(param, host, bad);
    if (option !== null) {
      if (option !== false) setSocket(option);
      // nginx on a platform without SO_REUSEPORT warns in these words and listens without it; the
      // workers still accept for themselves, on the one shared socket (server/reuseport.ts).
      // Where Node has no reusePort the native addon opens the socket, when it is there.
      if (option !== false && option.reuseport === true && !reusePortAvailable()) {
        cx.warn('reuseport is not supported on this platform, ignored', d, `Node ${process.versions.node} has no reusePort (Node 22.12 or later, 23.1 in 23, on Linux or FreeBSD) and the native addon that opens the socket instead is not available (${nativeAddonProblem() || 'built before it'}): one socket, on which every worker accepts for itself`);
      }
      continue;
    }
    if (param === 'default_server' || param === 'default') {
      defaultServer = true;
      continue;
    }
    if (param === 'ssl') {
      ssl = true;
      continue;
    }
    if (param === 'http2') {
      http2 = true;
      continue;
    }
    if (param === 'proxy_protocol') {
      proxyProtocol = true;
      continue;
    }
    const name = param.split('=')[0]!;
    const planned = PLANNED_LISTEN_PARAMS.get(name);
    if (planned !== undefined) {
      cx.problem(`the "${name}" parameter of the "listen" directive is not implemented yet`, d,
        `${planned}; remove "${param}" for now`);
    } else {
      cx.problem(`invalid parameter "${param}"`, d, 'the "listen" directive takes [ADDRESS:]PORT and optionally default_server, ssl, http2 and proxy_protocol');
    }
  }
  server.listens.push({ text, host, port, defaultServer, ssl, http2, proxyProtocol, at: locOf(d), ...(socket === undefined ? {} : { socket }) });
}

function serverName(d: Directive, scope: Scope, cx: BuildContext): void {
  const server = scope.server!;
  for (const arg of d.args) {
    let name = arg === '$hostname' ? hostname() : arg;
    if (name.startsWith('~')) {
      // nginx matches server_name regexes case-insensitively.
      const regex = cx.regex(name.slice(1), true, d);
      if (regex !== null) server.names.push({ kind: 'regex', regex });
      server.primaryName ??= name;
      continue;
    }
    name = name.toLowerCase();
    // nginx's $server_name drops the leading dot of ".example.com" (checked against nginx 1.22).
    server.primaryName ??= name.startsWith('.') ? name.slice(1) : name;
    if ((name.startsWith('*') && (name.length < 3 || name[1] !== '.')) || (name.startsWith('.') && name.length < 2)) {
      cx.problem(`server name "${arg}" is invalid`, d, 'wildcards are "*.example.com", ".example.com" or "www.example.*"');
      continue;
    }
    // Only one wildcard, and only as a whole first or last label.
    const bare = name.startsWith('*.') ? name.slice(2) : name.length > 2 && name.endsWith('.*') ? name.slice(0, -2) : name;
    if (bare.includes('*')) {
      cx.problem(`invalid server name or wildcard "${arg}"`, d, 'wildcards are "*.example.com", ".example.com" or "www.example.*"');
      continue;
    }
    let entries: ServerName[];
    if (name.startsWith('*.')) {
      entries = [{ kind: 'suffix', suffix: name.slice(1) }];
    } else if (name.startsWith('.')) {
      entries = [{ kind: 'exact', name: name.slice(1) }, { kind: 'suffix', suffix: name }];
    } else if (name.length > 2 && name.endsWith('.*')) {
      entries = [{ kind: 'prefix', prefix: name.slice(0, -1) }];
    } else {
      entries = [{ kind: 'exact', name }];
    }
    server.names.push(...entries);
  }
}

interface ParsedLocation {
  readonly modifier: LocationModifier;
  readonly pattern: string;
}

function parseLocationArgs(d: Directive, cx: BuildContext): ParsedLocation | null {
  if (d.args.length === 2) {
    const mod = d.args[0]!;
    if (mod === '=' || mod === '^~' || mod === '~' || mod === '~*') return { modifier: mod, pattern: d.args[1]! };
    cx.problem(`invalid location modifier "${mod}"`, d, 'modifiers are =, ^~, ~ and ~*');
    return null;
  }
  const name = d.args[0]!;
  // nginx reads a modifier glued to the pattern too: "=/x", "^~/x", "~^/x", "~*\.png$".
  if (name.startsWith('=')) return { modifier: '=', pattern: name.slice(1) };
  if (name.startsWith('^~')) return { modifier: '^~', pattern: name.slice(2) };
  if (name.startsWith('~*')) return { modifier: '~*', pattern: name.slice(2) };
  if (name.startsWith('~')) return { modifier: '~', pattern: name.slice(1) };
  if (name.startsWith('@')) return { modifier: '@', pattern: name };
  return { modifier: '', pattern: name };
}

function isPrefix(m: LocationModifier): boolean {
  return m === '' || m === '^~';
}

function location(d: Directive, scope: Scope, cx: BuildContext): Scope | void {
  const parsed = parseLocationArgs(d, cx);
  if (parsed === null) return;
  const { modifier, pattern } = parsed;
  const parent = scope.context === 'location' ? scope.location : null;
  if (parent !== null) {
    if (parent.modifier === '=') {
      return cx.problem(`location "${pattern}" cannot be inside the exact location "${parent.pattern}"`, d,
        'an exact location matches one URI only; move this location out of it');
    }
    if (parent.modifier === '@') {
      return cx.problem(`location "${pattern}" cannot be inside the named location "${parent.pattern}"`, d);
    }
    if (modifier === '@') {
      return cx.problem(`named location "${pattern}" can be on the server level only`, d);
    }
    const regexChild = modifier === '~' || modifier === '~*';
    if (!regexChild && !pattern.startsWith(parent.pattern)) {
      return cx.problem(`location "${pattern}" is outside location "${parent.pattern}"`, d,
        `a nested prefix location must start with its parent's prefix "${parent.pattern}"`);
    }
  }
  let regex: RegExp | null = null;
  if (modifier === '~' || modifier === '~*') {
    regex = cx.regex(pattern, modifier === '~*', d);
    if (regex === null) return;
  }
  const siblings = parent !== null ? parent.locations : scope.server!.locations;
  const duplicate = siblings.some((s) => s.pattern === pattern && (
    (s.modifier === '=' && modifier === '=')
    || (isPrefix(s.modifier) && isPrefix(modifier))
    || (s.modifier === '@' && modifier === '@')));
  if (duplicate) {
    cx.problem(`duplicate location "${pattern}"`, d, 'each prefix, exact and named location may appear once per level; merge the two blocks');
  }
  const loc: LocationDraft = { modifier, pattern, regex, locations: [], settings: {}, healthChecks: [], proxyPassWritten: false, at: locOf(d) };
  if (!duplicate) siblings.push(loc);
  return { ...scope, context: 'location', location: loc, settings: loc.settings };
}

export const httpCoreDirectives: readonly DirectiveSpec[] = [
  {
    name: 'server', contexts: ['http'], args: [0, 0], block: 'children', repeatable: true,
    handle(d, scope): Scope {
      const server: ServerDraft = { listens: [], names: [], primaryName: null, locations: [], settings: {}, at: locOf(d) };
      scope.http!.servers.push(server);
      return { ...scope, context: 'server', server, location: null, settings: server.settings };
    },
  },
  { name: 'listen', contexts: ['server'], args: ONE_OR_MORE, repeatable: true, handle: listen },
  { name: 'server_name', contexts: ['server'], args: ONE_OR_MORE, repeatable: true, handle: serverName },
  { name: 'location', contexts: ['server', 'location'], args: TAKE12, block: 'children', repeatable: true, handle: location },
  {
    name: 'keepalive_timeout', contexts: HTTP_SERVER_LOCATION, args: TAKE12,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) settingsOf(scope).keepaliveTimeout = v;
      if (d.args.length === 1) return;
      // nginx reads header_timeout in whole seconds (ngx_parse_time with is_sec): "500ms" is invalid.
      const header = parseDuration(d.args[1]!, true);
      if (header === null) {
        cx.problem(`"${d.name}" directive invalid value`, d, `"${d.args[1]!}" is not a duration in seconds ("60s", "1m"); it is sent as "Keep-Alive: timeout=SECONDS"`);
        return;
      }
      settingsOf(scope).keepaliveHeader = Math.floor(header / 1000);
    },
  },
  // nginx reads the request head before it knows the virtual server, so the default server's
  // value (or the http one) is the one that counts; hence no location context.
  {
    name: 'client_header_timeout', contexts: ['http', 'server'], args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) settingsOf(scope).clientHeaderTimeout = v;
    },
  },
  durationSetting('client_body_timeout', 'clientBodyTimeout'),
  durationSetting('send_timeout', 'sendTimeout'),
  {
    name: 'default_type', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope) {
      settingsOf(scope).defaultType = d.args[0]!;
    },
  },
];
