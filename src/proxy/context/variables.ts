import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import type { ComplexValue, MapConfig } from '../../config/types.js';
import type { RequestContext } from './request-context.js';
import type { ConnectionFigures } from '../../observability/stats.js';
import { SLUICE_VERSION } from '../../core/version.js';
import { originForm } from '../../routing/uri.js';
import { compressionRatio } from '../filters/compression.js';
import { documentRoot, mapUriToPath } from '../../static/map-path.js';
import { fastcgiScriptName, fastcgiSplit } from './fastcgi-script.js';

/** Reads one variable; `undefined` is nginx's "not found" (logged as "-", sent as ""). */
export type VariableGetter = (ctx: RequestContext) => string | undefined;

const HOSTNAME = hostname();
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function tzOffset(d: Date, colon: boolean): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${sign}${pad(Math.floor(a / 60))}${colon ? ':' : ''}${pad(a % 60)}`;
}

/** `$time_local`: "22/Nov/2026:04:40:00 +0000". */
export function timeLocal(d: Date): string {
  return `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${tzOffset(d, false)}`;
}

/** `$time_iso8601`: "2026-11-22T04:40:00+00:00". */
export function timeIso8601(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${tzOffset(d, true)}`;
}

function seconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

function header(ctx: RequestContext, name: string): string | undefined {
  const v = ctx.headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(name === 'cookie' ? '; ' : ', ') : v;
}

/**
 * `$host`: the host from an absolute-form target or the Host header, without port, lower-cased,
 * without a trailing dot; the server name when the request names none.
 */
export function hostVariable(ctx: RequestContext): string {
  return ctx.host || (ctx.server?.primaryName ?? '');
}

export function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

function joinAttempts(ctx: RequestContext, pick: (a: RequestContext['attempts'][number]) => string): string | undefined {
  if (ctx.attempts.length === 0) return undefined;
  return ctx.attempts.map(pick).join(', ');
}

function ms(v: number): string {
  return v < 0 ? '-' : seconds(v);
}

function remoteUser(ctx: RequestContext): string | undefined {
  const auth = ctx.headers.authorization;
  if (!auth || !/^basic /i.test(auth)) return undefined;
  const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(0, colon);
}

function argument(args: string, name: string): string | undefined {
  if (args === '') return undefined;
  const lower = name.toLowerCase();
  for (const pair of args.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq === -1 ? pair : pair.slice(0, eq);
    // ngx_http_arg: the name matched without case, and only where "=" follows it ("?a&a=1"
    // gives "1"; "?a" alone is not found); the first match wins.
    if (eq !== -1 && key.toLowerCase() === lower) return pair.slice(eq + 1);
  }
  return undefined;
}

/** `$binary_remote_addr`: the address in 4 (IPv4) or 16 (IPv6) bytes, one character per byte. */
function binaryRemoteAddr(ctx: RequestContext): string | undefined {
  const addr = ctx.remoteAddr;
  if (isIPv4(addr)) return String.fromCharCode(...addr.split('.').map(Number));
  return isIPv6(addr) ? ipv6Bytes(addr) : undefined;
}

/** The 16 bytes of an IPv6 address (an IPv4-mapped one included), one character per byte. */
function ipv6Bytes(addr: string): string {
  let text = addr;
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail !== null) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') as [string, string] : [text, null];
  const left = head === '' ? [] : head.split(':');
  const right = rest === null || rest === '' ? [] : rest.split(':');
  const groups = rest === null ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  let out = '';
  for (const g of groups) {
    const n = parseInt(g, 16);
    out += String.fromCharCode(n >> 8, n & 0xff);
  }
  return out;
}

function cookie(ctx: RequestContext, name: string): string | undefined {
  const all = header(ctx, 'cookie');
  if (all === undefined) return undefined;
  for (const part of all.split(/;\s*/)) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1);
  }
  return undefined;
}

/**
 * `$upstream_cookie_NAME`: the value of cookie NAME the upstream's response set (nginx's
 * ngx_http_parse_set_cookie_lines: the first Set-Cookie of that name, up to its first `;`).
 */
function upstreamCookie(ctx: RequestContext, name: string): string | undefined {
  const v = ctx.upstreamHeaders?.['set-cookie'];
  if (v === undefined) return undefined;
  for (const line of Array.isArray(v) ? v : [v]) {
    const eq = line.indexOf('=');
    if (eq === -1 || line.slice(0, eq).trim() !== name) continue;
    const semi = line.indexOf(';', eq);
    return line.slice(eq + 1, semi === -1 ? undefined : semi).trim();
  }
  return undefined;
}

function proxyPort(ctx: RequestContext): string | undefined {
  const ph = ctx.proxyPass?.proxyHost;
  if (ph === undefined) return undefined;
  const m = /:(\d+)$/.exec(ph);
  return m ? m[1] : ctx.proxyPass?.scheme === 'https' ? '443' : '80';
}

const BUILTINS: ReadonlyMap<string, VariableGetter> = new Map<string, VariableGetter>([
  ['host', hostVariable],
  ['hostname', () => HOSTNAME],
  ['remote_addr', (c) => c.remoteAddr],
  ['binary_remote_addr', binaryRemoteAddr],
  ['pipe', (c) => (c.pipelined ? 'p' : '.')],
  // limit_rate's value for the request, in bytes per second (ngx_http_variable_request_set_size).
  ['limit_rate', (c) => String(c.limitRate ?? c.settings?.limitRate ?? 0)],
  // ngx_http_limit_req_module / ngx_http_limit_conn_module: not found until a limit applied.
  ['limit_req_status', (c) => c.limits?.reqStatus],
  ['limit_conn_status', (c) => c.limits?.connStatus],
  ['realip_remote_addr', (c) => c.conn.remoteAddress],
  ['realip_remote_port', (c) => String(c.conn.remotePort)],
  // After realip, the port that came with the address: none from a header (nginx: empty).
  ['remote_port', (c) => (c.realIp === null ? String(c.conn.remotePort) : c.realPort > 0 ? String(c.realPort) : '')],
  ['proxy_protocol_addr', (c) => c.conn.proxyProtocol?.addr ?? ''],
  ['proxy_protocol_port', (c) => (c.conn.proxyProtocol ? String(c.conn.proxyProtocol.port) : '')],
  ['proxy_protocol_server_addr', (c) => c.conn.proxyProtocol?.serverAddr ?? ''],
  ['proxy_protocol_server_port', (c) => (c.conn.proxyProtocol ? String(c.conn.proxyProtocol.serverPort) : '')],
  ['remote_user', remoteUser],
  ['server_addr', (c) => c.conn.localAddress],
  ['server_port', (c) => String(c.conn.localPort)],
  ['server_name', (c) => c.server?.primaryName ?? ''],
  ['server_protocol', (c) => `HTTP/${c.httpVersion}`],
  ['scheme', (c) => (c.conn.tls ? 'https' : 'http')],
  ['https', (c) => (c.conn.tls ? 'on' : '')],
  ['request', (c) => `${c.method} ${c.rawUri} HTTP/${c.httpVersion}`],
  ['request_method', (c) => c.method],
  // nginx's $request_uri is the target without scheme and authority for an absolute-form request.
  ['request_uri', (c) => (c.badUri ? undefined : originForm(c.rawUri))],
  ['uri', (c) => c.uri],
  ['document_uri', (c) => c.uri],
  ['args', (c) => (c.hasArgs ? c.args : undefined)],
  ['query_string', (c) => (c.hasArgs ? c.args : undefined)],
  ['is_args', (c) => (c.args !== '' ? '?' : '')],
  ['request_length', (c) => String(c.bytesReceived)],
  ['request_id', (c) => (c.requestId ??= randomBytes(16).toString('hex'))],
  ['content_type', (c) => c.headers['content-type']],
  // nginx: the body when it was read into memory (request buffering), its temp file's name when in a file.
  ['request_body', (c) => (c.requestBody?.memory ?? c.streamedBody)?.toString('utf8')],
  ['request_body_file', (c) => c.requestBody?.file?.name],
  // nginx: a chunked body read whole has its length from then on (content_length_n).
  ['content_length', (c) => c.headers['content-length'] ?? (c.requestBody === null ? undefined : String(c.requestBody.length))],
  ['proxy_host', (c) => c.proxyPass?.proxyHost],
  ['proxy_port', proxyPort],
  ['proxy_add_x_forwarded_for', (c) => {
    const xff = header(c, 'x-forwarded-for');
    return xff ? `${xff}, ${c.remoteAddr}` : c.remoteAddr;
  }],
  ['status', (c) => pad(c.status, 3)],
  ['body_bytes_sent', (c) => String(c.bodyBytesSent)],
  ['bytes_sent', (c) => String(c.bytesSent)],
  ['bytes_received', (c) => String(c.bytesReceived)],
  ['request_time', (c) => seconds((c.endMs || performance.now()) - c.startMs)],
  ['upstream_addr', (c) => joinAttempts(c, (a) => a.addr)],
  ['upstream_cache_status', (c) => c.cacheStatus ?? undefined],
  ['upstream_status', (c) => joinAttempts(c, (a) => (a.status ? String(a.status) : '-'))],
  ['upstream_connect_time', (c) => joinAttempts(c, (a) => ms(a.connectTime))],
  ['upstream_header_time', (c) => joinAttempts(c, (a) => ms(a.headerTime))],
  ['upstream_response_time', (c) => joinAttempts(c, (a) => ms(a.responseTime))],
  ['upstream_bytes_sent', (c) => joinAttempts(c, (a) => String(a.bytesSent))],
  ['upstream_bytes_received', (c) => joinAttempts(c, (a) => String(a.bytesReceived))],
  ['time_local', () => timeLocal(new Date())],
  ['time_iso8601', () => timeIso8601(new Date())],
  ['msec', () => (Date.now() / 1000).toFixed(3)],
  ['connection', (c) => String(c.conn.id)],
  ['connection_requests', (c) => String(c.conn.requests)],
  ['pid', () => String(process.pid)],
  ['nginx_version', () => SLUICE_VERSION],
  ['sluice_version', () => SLUICE_VERSION],
  ['http_upgrade', (c) => header(c, 'upgrade')],
  // ngx_http_gzip_filter_module and ngx_brotli: not found unless the body was compressed to its end.
  ['gzip_ratio', (c) => compressionRatio(c, 'gzip')],
  ['brotli_ratio', (c) => compressionRatio(c, 'br')],
  ['websocket_duration', (c) => (c.tunnelStartMs ? seconds((c.endMs || performance.now()) - c.tunnelStartMs) : undefined)],
  // Sluice's: "1000/client", the first close frame either way and its sender; not found without one.
  ['websocket_close_code', (c) => (c.websocketClose === null ? undefined : `${c.websocketClose.code}/${c.websocketClose.side}`)],
  ['websocket_messages_in', (c) => (c.websocket && c.tunnelStartMs ? String(c.websocketMessagesIn) : undefined)],
  ['websocket_messages_out', (c) => (c.websocket && c.tunnelStartMs ? String(c.websocketMessagesOut) : undefined)],
  // The subprotocol the upstream chose in its 101 (RFC 6455 4.2.2), as passed to the client.
  ['websocket_subprotocol', (c) => (c.websocket && c.tunnelStartMs ? c.sentHeader('sec-websocket-protocol') : undefined)],
  // ngx_http_ssl_module: not found on plain connections (logged as "-").
  ['ssl_protocol', (c) => c.conn.ssl?.protocol],
  ['ssl_cipher', (c) => c.conn.ssl?.cipher],
  ['ssl_server_name', (c) => c.conn.ssl?.serverName],
  ['ssl_client_verify', (c) => c.conn.ssl?.clientVerify],
  ['ssl_alpn_protocol', (c) => c.conn.ssl?.alpn],
  ['ssl_session_reused', (c) => c.conn.ssl?.sessionReused],
  ['ssl_client_s_dn', (c) => c.conn.ssl?.clientSubject],
  ['ssl_client_i_dn', (c) => c.conn.ssl?.clientIssuer],
  // nginx: "1" while a request arrives as TLS 1.3 early data; Node.js never accepts early data.
  ['ssl_early_data', (c) => (c.conn.ssl ? '' : undefined)],
  ['fastcgi_script_name', (c) => (c.settings === null ? c.uri : fastcgiScriptName(c.settings.fastcgi, c.uri))],
  ['fastcgi_path_info', (c) => (c.settings === null ? '' : fastcgiSplit(c.settings.fastcgi, c.uri).pathInfo)],
]);

/** The variables of the static modules: they need the request's root, which may hold variables itself. */
const FILE_VARIABLES = ['document_root', 'realpath_root', 'request_filename'] as const;

/** The stub_status module's variables, read from the runtime's connection figures. */
const CONNECTION_VARIABLES = ['connections_active', 'connections_reading', 'connections_writing', 'connections_waiting'];

export function builtinVariableNames(): string[] {
  return [...BUILTINS.keys(), ...FILE_VARIABLES, ...CONNECTION_VARIABLES];
}

function familyGetter(name: string): VariableGetter | undefined {
  if (name.startsWith('http_')) {
    const h = name.slice(5).replaceAll('_', '-').toLowerCase();
    return (c) => header(c, h);
  }
  if (name.startsWith('arg_')) {
    const a = name.slice(4);
    return (c) => argument(c.args, a);
  }
  if (name.startsWith('cookie_')) {
    const k = name.slice(7);
    return (c) => cookie(c, k);
  }
  if (name.startsWith('sent_http_')) {
    const h = name.slice(10).replaceAll('_', '-').toLowerCase();
    return (c) => c.sentHeader(h);
  }
  if (name.startsWith('upstream_cookie_')) {
    const k = name.slice(16);
    return (c) => upstreamCookie(c, k);
  }
  if (name.startsWith('upstream_http_')) {
    const h = name.slice(14).replaceAll('_', '-').toLowerCase();
    return (c) => {
      const v = c.upstreamHeaders?.[h];
      return Array.isArray(v) ? v.join(', ') : v;
    };
  }
  if (/^[0-9]$/.test(name)) {
    const i = Number(name);
    return (c) => c.captures[i];
  }
  return undefined;
}

/**
 * A variable `set` writes: its value once set, else what the name reads without one (a map, a
 * `$http_` family member, or the uninitialized value); nginx keeps both under one index.
 */
function setVariable(slot: number, otherwise: VariableGetter): VariableGetter {
  return (c) => {
    const v = c.setValues?.[slot];
    return v !== undefined ? v : otherwise(c);
  };
}

/**
 * The variables of one runtime: builtins, families and the maps of its config. Getters are
 * created once per name and cached, so evaluating a compiled value does no string work per name.
 */
export class Variables {
  readonly #getters = new Map<string, VariableGetter>();
  readonly #maps = new Map<string, MapConfig>();
  /** The variables `set` defines, with their slot in RequestContext.setValues. */
  readonly #sets = new Map<string, number>();
  /** Told when a `set` variable is read before it was set (the runtime logs nginx's warning). */
  onUninitialized: ((name: string, ctx: RequestContext) => void) | null = null;

  readonly #connections: () => ConnectionFigures | null;

  /**
   * `setVariables`: the names `set` defines, by slot; `connections`: the figures `$connections_*`
   * read (the stub_status ones); none in unit tests.
   */
  constructor(maps: readonly MapConfig[], setVariables: readonly string[] = [], connections: () => ConnectionFigures | null = () => null) {
    for (const m of maps) this.#maps.set(m.variable, m);
    setVariables.forEach((name, i) => this.#sets.set(name, i));
    this.#connections = connections;
  }

  getter(name: string): VariableGetter {
    let g = this.#getters.get(name);
    if (g) return g;
    const map = this.#maps.get(name);
    const slot = this.#sets.get(name);
    if (map) g = (c) => this.#evalMap(map, c);
    else g = BUILTINS.get(name) ?? this.#fileGetter(name) ?? familyGetter(name) ?? (slot === undefined ? (c) => c.namedCaptures[name] : this.#unset(name));
    if (slot !== undefined) g = setVariable(slot, g);
    this.#getters.set(name, g);
    return g;
  }

  /**
   * A `set` variable before its `set` ran: a named capture of that name when a regex set one, else
   * empty with nginx's warning (ngx_http_rewrite_var).
   */
  #unset(name: string): VariableGetter {
    return (c) => {
      const captured = c.namedCaptures[name];
      if (captured !== undefined) return captured;
      this.onUninitialized?.(name, c);
      return '';
    };
  }

  /**
   * `$document_root` (the root or alias, evaluated), `$realpath_root` (the same with symbolic
   * links resolved; not found when it does not exist) and `$request_filename` (the file name of
   * `$uri`): nginx's ngx_http_variable_document_root, _realpath_root and _request_filename.
   */
  #fileGetter(name: string): VariableGetter | undefined {
    const evaluate = (v: ComplexValue, c: RequestContext): string => this.evaluate(v, c);
    switch (name) {
      // ngx_http_stub_status_module's variables, counted when asked.
      case 'connections_active':
      case 'connections_reading':
      case 'connections_writing':
      case 'connections_waiting': {
        const key = name.slice('connections_'.length) as 'active' | 'reading' | 'writing' | 'waiting';
        return () => {
          const figures = this.#connections();
          return figures === null ? '0' : String(figures[key]);
        };
      }
      case 'document_root':
        return (c) => (c.settings === null ? undefined : documentRoot(c.settings.files, c, evaluate));
      case 'realpath_root':
        return (c) => {
          if (c.settings === null) return undefined;
          try {
            return realpathSync(documentRoot(c.settings.files, c, evaluate));
          } catch {
            return undefined;
          }
        };
      case 'request_filename':
        return (c) => (c.settings === null ? undefined : mapUriToPath(c.settings.files, c.uri, c, evaluate).path);
      default:
        return undefined;
    }
  }

  /**
   * Whether reading `name` evaluates other values of the config (a map's source and values, the
   * root of `$document_root` and its kin), and so may read any part of the request.
   */
  readsOtherVariables(name: string): boolean {
    return this.#maps.has(name) || (FILE_VARIABLES as readonly string[]).includes(name);
  }

  get(name: string, ctx: RequestContext): string | undefined {
    return this.getter(name)(ctx);
  }

  /** Evaluates a compiled value; unknown or not-found variables become "". */
  evaluate(value: ComplexValue, ctx: RequestContext): string {
    if (value.constant !== null) return value.constant;
    let out = '';
    for (const p of value.parts) {
      if ('text' in p) out += p.text;
      else out += this.getter(p.variable)(ctx) ?? '';
    }
    return out;
  }

  #evalMap(map: MapConfig, ctx: RequestContext): string | undefined {
    if (map.volatile) return this.#lookupMap(map, ctx);
    const cache = ctx.mapCache;
    if (cache !== null) {
      for (let i = 0; i < cache.length; i += 2) if (cache[i] === map.variable) return cache[i + 1];
    }
    const result = this.#lookupMap(map, ctx);
    // Read again: the lookup may have cached a map its source names.
    if (ctx.mapCache === null) ctx.mapCache = [map.variable, result];
    else ctx.mapCache.push(map.variable, result);
    return result;
  }

  #lookupMap(map: MapConfig, ctx: RequestContext): string | undefined {
    let key = this.evaluate(map.source, ctx);
    if (map.hostnames) key = key.replace(/\.$/, '');
    const lower = key.toLowerCase();
    const exact = map.exact.get(lower);
    if (exact) return this.evaluate(exact, ctx);
    if (map.hostnames) {
      let best: { len: number; value: ComplexValue } | null = null;
      for (const s of map.suffixes) {
        if (lower.endsWith(s.suffix) && (!best || s.suffix.length > best.len)) best = { len: s.suffix.length, value: s.value };
      }
      if (best) return this.evaluate(best.value, ctx);
      for (const p of map.prefixes) {
        if (lower.startsWith(p.prefix) && (!best || p.prefix.length > best.len)) best = { len: p.prefix.length, value: p.value };
      }
      if (best) return this.evaluate(best.value, ctx);
    }
    for (const r of map.regexes) {
      const m = r.regex.exec(key);
      if (m) {
        // Captures of a map regex are visible to its value (nginx sets $1.. from the last match).
        const saved = ctx.captures;
        const savedNamed = ctx.namedCaptures;
        ctx.captures = [...m];
        ctx.namedCaptures = { ...savedNamed, ...(m.groups ?? {}) };
        try {
          return this.evaluate(r.value, ctx);
        } finally {
          ctx.captures = saved;
          ctx.namedCaptures = savedNamed;
        }
      }
    }
    return map.defaultValue ? this.evaluate(map.defaultValue, ctx) : '';
  }
}
