import type { RequestLimits } from '../../limits/request-limits.js';
import type { ProxyProtocolInfo } from '../../server/proxy-protocol.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { LocationConfig, ProxyPass, ServerConfig, Settings } from '../../config/types.js';
import { requestHost } from '../../routing/host.js';
import type { SslInfo } from './ssl-info.js';
import type { BufferedBody } from '../body/request-body.js';
import type { TunnelKeep } from './tunnel-keep.js';

/** What a client connection contributes to every request on it. */
export interface ConnInfo {
  readonly id: number;
  requests: number;
  /** performance.now() when the connection's first request came (keepalive_time counts from it). */
  readonly startMs: number;
  /** socket.bytesRead when the previous request on this connection ended. */
  readMark: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly tls: boolean;
  /** The handshake's facts for `$ssl_*`; null (or absent) on a plain connection. */
  readonly ssl?: SslInfo | null;
  /** The PROXY protocol header of a `listen ... proxy_protocol` connection (`$proxy_protocol_*`). */
  readonly proxyProtocol?: ProxyProtocolInfo | null;
  /**
   * The connection registry that numbered it (server/connections.ts `owns`): a field rather than
   * a WeakSet entry, which an idle tunnel would keep for its whole life.
   */
  readonly registry?: object;
}

/** One try at one upstream server, for `$upstream_*` and the access log. */
export interface UpstreamAttempt {
  addr: string;
  status: number;
  /** Milliseconds, -1 when the phase was not reached. */
  connectTime: number;
  headerTime: number;
  responseTime: number;
  bytesSent: number;
  bytesReceived: number;
}

/** What a response compressor took in and gave out (src/proxy/filters/compression.ts). */
export interface CompressedBody {
  readonly encoding: 'gzip' | 'br';
  bytesIn: number;
  bytesOut: number;
  /** The compressed stream was completed (nginx reports a ratio only then). */
  done: boolean;
}

/** Shared by every context without captures (most of them): nothing is allocated per request. */
const NO_CAPTURES: readonly (string | undefined)[] = Object.freeze([]);
const NO_NAMED_CAPTURES: Readonly<Record<string, string | undefined>> = Object.freeze({});
const NO_STRINGS: readonly string[] = Object.freeze([]);

/**
 * Everything known about one request (or one WebSocket session) as it moves through the proxy.
 * Variables read from it; the access log and events receive it when it ends.
 */
export class RequestContext {
  readonly conn: ConnInfo;
  /** `$request_method`: an error page's URI target turns it into GET (nginx). */
  method: string;
  /** The request target exactly as the client sent it. */
  readonly rawUri: string;
  readonly httpVersion: string;
  /** The request headers; an open tunnel keeps only those its end reads (compactForTunnel). */
  headers: IncomingHttpHeaders;
  /**
   * The request's header lines as received; only building the upstream request reads them, so a
   * tunnel drops them once it is open (`headers` stays for `$http_*`).
   */
  rawHeaders: readonly string[];
  /**
   * The host the request names (absolute-form target first, then Host), without port, lower-case:
   * "" when there is none, null when it is invalid (nginx answers 400).
   */
  readonly host: string | null;
  /** Decoded, normalised path (`$uri`). */
  uri: string;
  /** Query string without "?" (`$args`), or "" when none. */
  args: string;
  hasArgs: boolean;
  server: ServerConfig | null = null;
  location: LocationConfig | null = null;
  settings: Settings | null = null;
  /** Regex captures from the location or server_name match: index 0 is the whole match. */
  captures: readonly (string | undefined)[] = NO_CAPTURES;
  namedCaptures: Readonly<Record<string, string | undefined>> = NO_NAMED_CAPTURES;
  proxyPass: ProxyPass | null = null;
  /** Redirected internally (`index`, `try_files`): `internal` locations let it in. */
  /** The request this one is a subrequest of (SSI's `include`), null for the client's own. */
  parent: RequestContext | null = null;
  internal = false;
  /** Internal redirects so far (nginx stops at 10: routing/server-routes.ts). */
  uriChanges = 0;
  /** An error page was used (nginx's r->error_page): without recursive_error_pages, the only one. */
  errorPage = false;
  /**
   * The status an error page's answer goes out with (nginx's r->err_status): the error's own, or
   * the `=code` of the line; 0 lets the answer keep its own (`=`, or no error page).
   */
  errStatus = 0;
  /**
   * Headers set before the error that go out with the error page's answer, as nginx's headers_out
   * outlives the internal redirect: a `return` redirect's Location, a 401's WWW-Authenticate.
   */
  errHeaders: readonly string[] = NO_STRINGS;
  /** The request body is no longer forwarded: an error page's target runs without it. */
  bodyDropped = false;
  /**
   * The client's target still names the URI being served (nginx's valid_unparsed_uri): false
   * after an internal redirect to another URI, so proxy_pass sends the new `$uri` and `$args`.
   */
  unparsedUri = true;
  /**
   * The rewrite script changed the URI for a new location search (nginx's r->uri_changed):
   * `rewrite` without a flag or with `last`; `break` clears it.
   */
  uriChanged = false;
  /**
   * The URI still starts with the location's prefix (nginx's r->valid_location): false after
   * `rewrite ... break` (or `break` after a rewrite), and then proxy_pass sends the whole `$uri`.
   */
  validLocation = true;
  /** Values of the `set` variables by slot (RewriteStep in config/types.ts); made on the first `set`. */
  setValues: (string | undefined)[] | null = null;
  /** `set $limit_rate SIZE` in the rewrite phase: this request's rate, over the level's `limit_rate`; null: not set. */
  limitRate: number | null = null;
  /** The request came while the previous one on its connection was still answered (`$pipe`). */
  pipelined = false;
  /** nginx could not parse the URI (a "/../" above the root): `$uri` and `$request_uri` are unset. */
  badUri = false;
  /** try_files found a file under an `alias` of a regex location: the URI is appended to it (nginx's add_uri_to_alias). */
  addUriToAlias = false;
  status = 0;
  #bodyBytesSent = 0;
  /** `bytesSent` when a tunnel started (its 101 or 200 head written); -1 before. */
  #tunnelFrom = -1;
  #bytesSent = 0;
  #bytesReceived = 0;
  /** While the native addon holds the tunnel: its counters, which the figures below add. */
  #counters: Float64Array | null = null;
  #slot = 0;
  readonly startMs: number;
  readonly startWall: number;
  endMs = 0;
  tunnelStartMs = 0;
  upgrade: string | null = null;
  websocket = false;
  /**
   * The first close frame of a WebSocket tunnel, either way: its status code and who sent it
   * ('sluice': its own, going away or a guardrail's) ($websocket_close_code).
   */
  websocketClose: { readonly code: number; readonly side: 'client' | 'upstream' | 'sluice' } | null = null;
  /** Data messages of a WebSocket tunnel from the client ($websocket_messages_in) and to it (`_out`). */
  websocketMessagesIn = 0;
  websocketMessagesOut = 0;
  attempts: UpstreamAttempt[] = [];
  upstreamHeaders: IncomingHttpHeaders | null = null;
  /**
   * What the upstream request needs of the proxy cache's part in this request (the session holds
   * the whole of it, src/proxy/cache/cache-request.ts); null where the cache takes no part.
   */
  cache: { readonly revalidateHeaders: readonly string[]; readonly cacheable: boolean } | null = null;
  /** `$upstream_cache_status`: MISS, HIT, EXPIRED, BYPASS...; null when the cache was not consulted. */
  cacheStatus: string | null = null;
  /**
   * The response headers as sent (name, value, ...), for `$sent_http_*`: the list the front end
   * wrote, which nothing changes after; null before a response. Read through {@link sentHeader}.
   */
  sentList: readonly string[] | null = null;
  /** `sentList` by lowercase name, made at the first read (most responses are never asked). */
  #sentByName: Record<string, string> | null = null;
  #sentByNameOf: readonly string[] | null = null;
  error: string | null = null;
  requestId: string | null = null;
  /** ngx_http_gzip_ok's answer once asked: gzip_static asks before the gzip filter, which reuses it. */
  gzipOk: boolean | null = null;
  /** A compression filter or gzip_static considered the response (nginx's r->gzip_vary): `Vary: Accept-Encoding` under gzip_vary. */
  gzipVary = false;
  /** The response compressor's byte counts, for `$gzip_ratio` and `$brotli_ratio`. */
  compressed: CompressedBody | null = null;
  /**
   * What the proxy's statistics noted on this request (observability/stats-collector.ts: routed,
   * its attempts recorded), as bits.
   */
  statsMarks = 0;
  /**
   * Cached map results (nginx caches non-volatile map values per request), made on first use: a
   * flat [variable, value, variable, value...] list. A request uses few maps, and a Map (which an
   * open tunnel keeps for its whole life) costs several times the bytes of a two-element array.
   */
  mapCache: (string | undefined)[] | null = null;

  /** The request body read whole (proxy_request_buffering): `$request_body`, `$request_body_file`, retries. */
  requestBody: BufferedBody | null = null;
  /** A streamed body's bytes, when it fit client_body_buffer_size (`$request_body` with request buffering off). */
  streamedBody: Buffer | null = null;

  /** The client address set_real_ip_from and real_ip_header gave (routing/realip.ts); null: the connection's. */
  realIp: string | null = null;
  /** limit_req / limit_conn of this request (src/limits/): statuses, counts held, a delay. */
  limits: RequestLimits | null = null;
  /**
   * The client port that came with `realIp`: the PROXY header's for `real_ip_header
   * proxy_protocol`, else 0 (an address from a header has none, and nginx's `$remote_port` is then empty).
   */
  realPort = 0;

  /** `$remote_addr`: the real client address when the realip module set one, else the connection's. */
  get remoteAddr(): string {
    return this.realIp ?? this.conn.remoteAddress;
  }

  constructor(conn: ConnInfo, method: string, rawUri: string, httpVersion: string, headers: IncomingHttpHeaders, rawHeaders: readonly string[], nowMs: number) {
    this.conn = conn;
    this.method = method;
    this.rawUri = rawUri;
    // The parsers make a new "1.1" per request; the literal is one string for all (a tunnel keeps it).
    this.httpVersion = httpVersion === '1.1' ? '1.1' : httpVersion;
    this.headers = headers;
    this.rawHeaders = rawHeaders;
    this.host = requestHost(rawUri, headers.host);
    const q = rawUri.indexOf('?');
    this.uri = q === -1 ? rawUri : rawUri.slice(0, q);
    this.args = q === -1 ? '' : rawUri.slice(q + 1);
    this.hasArgs = q !== -1;
    this.startMs = nowMs;
    this.startWall = Date.now();
  }

  /**
   * `$body_bytes_sent`: the response body's bytes; for a tunnel, nginx counts every byte relayed
   * to the client after the 101 (ngx_http_upstream_process_upgraded adds them to the body).
   */
  get bodyBytesSent(): number {
    return this.#tunnelFrom < 0 ? this.#bodyBytesSent : this.#bodyBytesSent + this.bytesSent - this.#tunnelFrom;
  }

  set bodyBytesSent(v: number) {
    this.#bodyBytesSent = this.#tunnelFrom < 0 ? v : v - (this.bytesSent - this.#tunnelFrom);
  }

  /** The head that opened a tunnel is written: from here every byte sent is body. */
  tunnelBodyStarts(): void {
    this.#tunnelFrom = this.bytesSent;
  }

  /** Bytes written to the client connection for this request (tunnel included). */
  get bytesSent(): number {
    return this.#counters === null ? this.#bytesSent : this.#bytesSent + (this.#counters[this.#slot * 2 + 1] as number);
  }

  set bytesSent(v: number) {
    this.#bytesSent = this.#counters === null ? v : v - (this.#counters[this.#slot * 2 + 1] as number);
  }

  /** Bytes read from the client connection for this request (tunnel included). */
  get bytesReceived(): number {
    return this.#counters === null ? this.#bytesReceived : this.#bytesReceived + (this.#counters[this.#slot * 2] as number);
  }

  set bytesReceived(v: number) {
    this.#bytesReceived = this.#counters === null ? v : v - (this.#counters[this.#slot * 2] as number);
  }

  /**
   * While the native addon relays the tunnel, the byte figures read its counters (written by its
   * I/O thread) on top of what was counted before, so subscribers and the status pages see live
   * figures; `null` fixes them at their current values.
   */
  /**
   * The context of a tunnel lives as long as the tunnel, for its end (access log, variables,
   * events): it lets go of what only the handshake needed. The raw request headers were read to
   * build the upstream request, and the attempts array gets its exact size (the first push() left
   * room for 17). `keep` says what the end reads of the rest (tunnel-keep.ts): the request headers
   * it names, the upstream's and the sent headers and the cached map values only when a log
   * variable reads them.
   */
  compactForTunnel(keep: TunnelKeep): void {
    this.rawHeaders = NO_STRINGS;
    this.attempts = this.attempts.slice();
    if (keep.headers !== null) this.headers = pickHeaders(this.headers, keep.headers);
    if (!keep.upstreamHeaders) this.upstreamHeaders = null;
    if (!keep.sentHeaders) this.sentList = null;
    if (!keep.mapCache) this.mapCache = null;
  }

  /** A sent response header by lowercase name, repeated ones joined with ", " (`$sent_http_*`). */
  sentHeader(name: string): string | undefined {
    const list = this.sentList;
    if (list === null) return undefined;
    let byName = this.#sentByName;
    if (byName === null || this.#sentByNameOf !== list) {
      byName = {};
      for (let i = 0; i < list.length; i += 2) {
        const lower = (list[i] as string).toLowerCase();
        const v = list[i + 1] as string;
        byName[lower] = byName[lower] === undefined ? v : `${byName[lower]}, ${v}`;
      }
      this.#sentByName = byName;
      this.#sentByNameOf = list;
    }
    return byName[name];
  }

  countIn(counters: Float64Array | null, slot = 0): void {
    const received = this.bytesReceived;
    const sent = this.bytesSent;
    this.#counters = counters;
    this.#slot = slot;
    this.bytesReceived = received;
    this.bytesSent = sent;
  }
}

/** The headers of `headers` named in `names`, in a new object. */
function pickHeaders(headers: IncomingHttpHeaders, names: ReadonlySet<string>): IncomingHttpHeaders {
  const kept: IncomingHttpHeaders = {};
  for (const name of names) {
    if (Object.hasOwn(headers, name)) kept[name] = headers[name];
  }
  return kept;
}

/** True when the request carries a body (RFC 9112 6.3). */
export function requestHasBody(ctx: RequestContext): boolean {
  const cl = ctx.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  return ctx.headers['transfer-encoding'] !== undefined;
}

/** The request body's declared length (Content-Length), or 0 when none is declared. */
export function declaredBodySize(ctx: RequestContext): number {
  const cl = ctx.headers['content-length'];
  if (cl === undefined) return 0;
  const n = Number(cl);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}
