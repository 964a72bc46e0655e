/**
 * The typed, validated, frozen configuration that the control plane hands to the data plane.
 * Everything here is plain data (plus compiled RegExps); the data plane never re-parses text.
 * Durations are milliseconds, sizes are bytes.
 */
import type { Cidr } from '../core/cidr.js';

/** Where a directive was written: used for every error message. */
export interface SourceLoc {
  readonly file: string;
  readonly line: number;
}

/**
 * One piece of an nginx "complex value": literal text or a variable reference.
 * `$host` and `${host}` both become `{ variable: 'host' }`; `$1` becomes `{ variable: '1' }`.
 */
export type ValuePart = { readonly text: string } | { readonly variable: string };

/** A string that may contain variables, compiled once at config time. */
/** `websocket_message_rate RATE [burst=N] [both] [close]`. */
export interface WebSocketMessageRate {
  /** Messages per second. */
  readonly rate: number;
  readonly burst: number;
  readonly both: boolean;
  readonly close: boolean;
  /** The rate as written, for the log. */
  readonly text: string;
}

/**
 * One entry of `websocket_allowed_origins`: `*` (any), `none` (no Origin header), `null` (the
 * literal "null" origin of sandboxed pages), a host with optional scheme and port (`*.` for its
 * subdomains), or a value with variables compared as a whole origin.
 */
export type OriginRule =
  | { readonly kind: 'any' }
  | { readonly kind: 'none' }
  | { readonly kind: 'null' }
  | { readonly kind: 'host'; readonly scheme: string | null; readonly host: string; readonly wildcard: boolean; readonly port: string | null }
  | { readonly kind: 'value'; readonly value: ComplexValue };

export interface ComplexValue {
  /** The text as written in the config (after unquoting). */
  readonly raw: string;
  readonly parts: readonly ValuePart[];
  /** The value when it contains no variables, else null. */
  readonly constant: string | null;
}

export type LogLevel = 'debug' | 'info' | 'notice' | 'warn' | 'error' | 'crit' | 'alert' | 'emerg';

/** A `syslog:` log target (RFC 3164 over UDP). */
export interface SyslogTarget {
  readonly host: string;
  /** @default 514 */
  readonly port: number;
  /** RFC 5424 facility number. @default 23 (local7) */
  readonly facility: number;
  /** The access log's severity (the error log uses each line's level). @default 6 (info) */
  readonly severity: number;
  /** @default 'sluice' (nginx: 'nginx') */
  readonly tag: string;
  readonly nohostname: boolean;
}

/** `error_log FILE [LEVEL]`: `path` is absolute, the literal 'stderr', or the `syslog:` text (then `syslog` is set). */
export interface ErrorLogTarget {
  readonly path: string;
  readonly level: LogLevel;
  readonly syslog?: SyslogTarget;
}

/** `access_log` buffering: `buffer=SIZE [flush=TIME] [gzip[=LEVEL]]`. */
export interface AccessLogBuffer {
  readonly size: number;
  /** ms; 0: only when full (or on reopen and exit). */
  readonly flush: number;
  /** zlib level 1-9; 0: not compressed. */
  readonly gzip: number;
}

/**
 * `access_log PATH [FORMAT [buffer=SIZE] [gzip[=LEVEL]] [flush=TIME] [if=COND]]`: `path` is
 * absolute, 'stdout' / 'stderr', or the `syslog:` text (then `syslog` is set); `pathValue` is set
 * when the path has variables (the file is chosen per request).
 */
export interface AccessLogTarget {
  readonly path: string;
  readonly pathValue: ComplexValue | null;
  readonly format: string;
  readonly condition: ComplexValue | null;
  readonly buffer: AccessLogBuffer | null;
  readonly syslog: SyslogTarget | null;
  readonly loc: SourceLoc;
}

/** `open_log_file_cache max=N [inactive=TIME] [min_uses=N] [valid=TIME]`: open files of variable-path logs kept. */
export interface OpenLogFileCache {
  readonly max: number;
  /** ms. @default 10000 */
  readonly inactive: number;
  /** @default 1 */
  readonly minUses: number;
  /** ms. @default 60000 */
  readonly valid: number;
}

export interface LogFormat {
  readonly name: string;
  readonly escape: 'default' | 'json' | 'none';
  readonly format: ComplexValue;
}

/** A resolved socket address (a hostname in the config may yield several). */
export interface SockAddr {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** A unix domain socket (`unix:/path`): the path; host and port are then unused. */
  readonly path?: string;
}

export interface UpstreamServer {
  /** The address as written in the config, e.g. "localhost:8010". */
  readonly name: string;
  readonly address: SockAddr;
  /** @default 1 */
  readonly weight: number;
  /** @default 1 */
  readonly maxFails: number;
  /** @default 10000 */
  readonly failTimeout: number;
  /** @default false */
  readonly backup: boolean;
  /** @default false */
  readonly down: boolean;
  /** `max_conns=N`: cap of concurrent connections (tunnels included); 0 = no cap. @default 0 */
  readonly maxConns: number;
  /** `slow_start=T`: ms over which the weight ramps up after the server recovers; 0 = off. @default 0 */
  readonly slowStart: number;
  /**
   * `resolve` (nginx 1.27.3): the host name re-resolved at run time; the server's address is
   * then a placeholder and the pool holds one peer per address the name resolves to. Absent:
   * the address was fixed at load.
   */
  readonly resolve?: string;
  readonly loc: SourceLoc;
}

/**
 * `resolver ADDRESS ... [valid=TIME] [ipv4=on|off] [ipv6=on|off] [status_zone=NAME]`: the DNS
 * servers names are resolved with at run time (proxy_pass with variables, `server ... resolve`).
 */
export interface ResolverConfig {
  /** The name servers, port 53 unless written. */
  readonly servers: readonly SockAddr[];
  /** `valid=`: overrides the answers' TTL (ms); null: the TTL. */
  readonly valid: number | null;
  /** @default true */
  readonly ipv4: boolean;
  /** @default true */
  readonly ipv6: boolean;
  readonly loc: SourceLoc;
}

/** The balancing method of an upstream (one per block; nginx: "load balancing method redefined"). */
export type BalanceMethod =
  | { readonly name: 'round_robin' }
  /** `least_conn [fleet]`: with `fleet`, other fleet members' open connections count too (fleet.md). */
  | { readonly name: 'least_conn'; readonly fleet?: true }
  | { readonly name: 'ip_hash' }
  | { readonly name: 'hash'; readonly key: ComplexValue; readonly consistent: boolean }
  /** `random [two [least_conn]]`: `two` picks two at random and keeps the less loaded. */
  | { readonly name: 'random'; readonly two: boolean };

/** `websocket_rebalance [max_rate=N/s] [tolerance=PERCENT] [code=CODE]` of an upstream (Sluice's own). */
export interface RebalanceConfig {
  /** Closes per second at most (over the fleet when counts are fleet-wide). @default 10 */
  readonly maxRate: number;
  /** How far a server may stray from its share of the tunnels, as a fraction (0.2 = 20%). @default 0.2 */
  readonly tolerance: number;
  /** The close code the client gets (RFC 6455 7.4). @default 1012 (Service Restart) */
  readonly code: number;
  readonly loc: SourceLoc;
}

/** `sticky cookie NAME [expires=T] [domain=D] [path=P] [httponly] [secure] [samesite=...]`. */
export interface StickyCookie {
  readonly name: string;
  /** ms; null = a session cookie; `expires=max` = Infinity. */
  readonly expires: number | null;
  readonly domain: string | null;
  /** @default '/' */
  readonly path: string;
  readonly httpOnly: boolean;
  readonly secure: boolean;
  readonly sameSite: 'strict' | 'lax' | 'none' | null;
  /**
   * `secret_file=FILE`: the key that signs the cookie's server ids (hex of the SHA-256 of FILE's
   * key, so instances sharing the file recognise each other's cookies); null: this process's own
   * random key.
   */
  readonly secret: string | null;
}

/**
 * `sticky learn create=$V lookup=$V zone=NAME:SIZE [timeout=TIME] [header] [sync]` (nginx Plus):
 * sessions the upstream creates (a cookie it sets, say) are learnt, value -> server, and requests
 * whose lookup value names a learnt session go to its server (src/upstream/sticky-learn.ts).
 */
export interface StickyLearn {
  /** The first non-empty value names a session the response created. */
  readonly create: readonly ComplexValue[];
  /** The first non-empty value names the session a request belongs to. */
  readonly lookup: readonly ComplexValue[];
  readonly zone: string;
  /** Bytes; bounds the sessions kept in memory (nginx: about 4000 per megabyte). */
  readonly size: number;
  /** ms a session lives without being looked up. @default 600000 */
  readonly timeout: number;
  readonly header: boolean;
  readonly sync: boolean;
}

/** One `health_check` line of a location, attached to the upstream its proxy_pass names. */
export interface HealthCheckConfig {
  /** @default 5000 */
  readonly interval: number;
  /** @default 0 */
  readonly jitter: number;
  /** Consecutive failures that make a server unhealthy. @default 1 */
  readonly fails: number;
  /** Consecutive successes that make it healthy again. @default 1 */
  readonly passes: number;
  /** @default '/' */
  readonly uri: string;
  /** Probe this port instead of the server's own; null = the server's. */
  readonly port: number | null;
  /** @default 'http' */
  readonly type: 'http' | 'websocket' | 'tcp';
  /** Name of a `match` block in http, or null (then: 2xx/3xx for http, 101 for websocket). */
  readonly match: string | null;
  /** The Host header sent with http and websocket probes: the proxy_pass host ($proxy_host). */
  readonly host: string;
  readonly loc: SourceLoc;
}

export type MatchHeaderTest =
  | { readonly name: string; readonly op: 'present' | 'absent' }
  | { readonly name: string; readonly op: '=' | '!='; readonly value: string }
  | { readonly name: string; readonly op: '~' | '!~'; readonly regex: RegExp };

/** A `match NAME { status ...; header ...; body ...; }` block (all tests must pass). */
export interface MatchConfig {
  readonly name: string;
  /** Each `status` line: codes and ranges, optionally negated with `!`; all lines must pass. */
  readonly status: readonly { readonly negate: boolean; readonly ranges: readonly (readonly [number, number])[] }[];
  readonly headers: readonly MatchHeaderTest[];
  readonly body: readonly { readonly negate: boolean; readonly regex: RegExp }[];
  readonly loc: SourceLoc;
}

export interface UpstreamConfig {
  readonly name: string;
  readonly servers: readonly UpstreamServer[];
  /** `keepalive N`: idle connections kept for reuse; 0 disables. @default 0 */
  readonly keepalive: number;
  /** `keepalive_timeout`. @default 60000 */
  readonly keepaliveTimeout: number;
  /** `keepalive_requests`. @default 1000 */
  readonly keepaliveRequests: number;
  /** True when made from `proxy_pass http://host:port` rather than an `upstream {}` block. */
  readonly implicit: boolean;
  /** @default { name: 'round_robin' } */
  readonly method: BalanceMethod;
  readonly sticky: StickyCookie | null;
  /** `websocket_rebalance`: moves tunnels off the most loaded servers; null: off. @default null */
  readonly rebalance?: RebalanceConfig | null;
  /** `sticky learn ...`; absent otherwise. */
  readonly stickyLearn?: StickyLearn;
  /** `zone NAME [SIZE]`: accepted; names the state shared by worker processes. */
  readonly zone: { readonly name: string; readonly size: number } | null;
  /** Active checks from every `health_check` in a location that proxies to this upstream. */
  readonly healthChecks: readonly HealthCheckConfig[];
  /** The resolver of `server ... resolve` lines (the block's own, else http's); null without any. */
  readonly resolver: ResolverConfig | null;
  /** `resolver_timeout` for them (ms). @default 30000 */
  readonly resolverTimeout: number;
  readonly loc: SourceLoc;
}

export interface MapConfig {
  /** The variable the map defines, without the `$`. */
  readonly variable: string;
  readonly source: ComplexValue;
  readonly defaultValue: ComplexValue | null;
  readonly hostnames: boolean;
  readonly volatile: boolean;
  /** Exact keys, stored lower-cased (nginx compares map strings case-insensitively). */
  readonly exact: ReadonlyMap<string, ComplexValue>;
  /** `hostnames`: `*.example.com` / `.example.com` keys, stored as the suffix ".example.com". */
  readonly suffixes: readonly { readonly suffix: string; readonly value: ComplexValue }[];
  /** `hostnames`: `www.example.*` keys, stored as the prefix "www.example.". */
  readonly prefixes: readonly { readonly prefix: string; readonly value: ComplexValue }[];
  /** `~regex` and `~*regex` keys in file order. */
  readonly regexes: readonly { readonly regex: RegExp; readonly value: ComplexValue }[];
  readonly loc: SourceLoc;
}

export interface Listen {
  /** As written, normalised: "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80". */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly defaultServer: boolean;
  /** `ssl`: connections to this address speak TLS (nginx: any server's `ssl` makes the address TLS). @default false */
  readonly ssl: boolean;
  /** `http2`: offer HTTP/2 by ALPN on this (ssl) address. @default false */
  readonly http2: boolean;
  /**
   * `proxy_protocol`: connections to this address start with a PROXY protocol header (v1 or v2)
   * from an L4 balancer (nginx: any server's `proxy_protocol` sets it for the address). @default false
   */
  readonly proxyProtocol: boolean;
  /** The socket parameters of `listen` (absent: nginx's defaults). */
  readonly socket?: ListenSocketOptions;
  readonly loc: SourceLoc;
}

/** `listen` parameters that shape the listening socket. */
export interface ListenSocketOptions {
  /** `ipv6only=on|off` on an IPv6 address: off also takes IPv4 connections. @default true */
  readonly ipv6only: boolean;
  /** `backlog=N`: the accept queue. @default 511 */
  readonly backlog: number;
  /** `bind`: a socket of its own even where a wildcard address on the port exists. @default false */
  readonly bind: boolean;
  /** `reuseport`: a socket per worker process, SO_REUSEPORT, the kernel spreads connections (server/reuseport.ts). @default false */
  readonly reuseport: boolean;
  /** `so_keepalive=on|off|IDLE:INTVL:CNT`: TCP keepalive on accepted connections; null leaves the system's. */
  readonly keepalive: { readonly on: boolean; readonly idleMs: number } | null;
}

export type ServerName =
  | { readonly kind: 'exact'; readonly name: string }
  /** `*.example.com` -> suffix ".example.com"; `.example.com` gives an exact and a suffix entry. */
  | { readonly kind: 'suffix'; readonly suffix: string }
  /** `www.example.*` -> prefix "www.example." */
  | { readonly kind: 'prefix'; readonly prefix: string }
  | { readonly kind: 'regex'; readonly regex: RegExp };

export interface HeaderRule {
  readonly name: string;
  readonly value: ComplexValue;
}

export interface AddHeaderRule extends HeaderRule {
  readonly always: boolean;
}

export interface ReturnAction {
  readonly code: number;
  /** Body text for most codes; the URL for 301/302/303/307/308. */
  readonly text: ComplexValue | null;
}

/*
 * The compiled form of ngx_http_rewrite_module's directives: each server or location level has one
 * script, its `set`, `if`, `rewrite`, `return` and `break` lines in file order (nginx compiles them
 * into one code array per level; an `if` block's lines go into its enclosing level's array).
 * src/routing/rewrite-run.ts runs a script; src/config/directives/rewrite.ts builds it.
 */

/** The file tests of `if`: `-f` plain file, `-d` directory, `-e` exists, `-x` executable. */
export type FileTest = 'f' | 'd' | 'e' | 'x';

/** One `if (...)` condition, as ngx_http_rewrite_if_condition reads it. */
export type RewriteCondition =
  /** `($var)`: false when the value is empty or "0". */
  | { readonly kind: 'value'; readonly value: ComplexValue }
  /** `($var = text)` / `($var != text)`; the text may hold variables. */
  | { readonly kind: 'compare'; readonly value: ComplexValue; readonly other: ComplexValue; readonly negate: boolean }
  /** `($var ~ re)`, `~*` (caseless), `!~`, `!~*`; a match sets the captures. */
  | { readonly kind: 'regex'; readonly value: ComplexValue; readonly regex: RegExp; readonly source: string; readonly negate: boolean }
  /** `(-f path)`, `(!-f path)` and the others of {@link FileTest}. */
  | { readonly kind: 'file'; readonly path: ComplexValue; readonly test: FileTest; readonly negate: boolean };

/** `rewrite REGEX REPLACEMENT [FLAG]`, compiled. */
export interface RewriteRule {
  readonly op: 'rewrite';
  readonly regex: RegExp;
  /** The regex as written, for the rewrite_log lines. */
  readonly source: string;
  /** The new URI (for a redirect: the whole new URL). */
  readonly uri: ComplexValue;
  /** The arguments written after the first `?` of an internal rewrite, or null when none. */
  readonly args: ComplexValue | null;
  /** The request's own arguments are kept (appended); false when the replacement ends with `?`. */
  readonly addArgs: boolean;
  /** 301 (`permanent`), 302 (`redirect`, or a replacement starting with http://, https://, $scheme), 0 otherwise. */
  readonly status: 0 | 301 | 302;
  /** `break`: stop the script and stay in the location. */
  readonly breakCycle: boolean;
  /** `last`, `break` or a redirect: the script ends after a match. */
  readonly stop: boolean;
  /** For a redirect: the URL already has a `?`, so the request's arguments follow a `&`. */
  readonly urlHasArgs: boolean;
}

export type RewriteStep =
  /** `set $name value`; `index` is the variable's slot in RequestContext.setValues, -1 for `$args`. */
  | { readonly op: 'set'; readonly name: string; readonly index: number; readonly value: ComplexValue }
  | RewriteRule
  | { readonly op: 'return'; readonly action: ReturnAction }
  | { readonly op: 'break' }
  /**
   * `if (...) { ... }`; `level`: for an `if` in a location, the index among the location's
   * `locations` of the configuration the block makes (nginx's nameless location), which serves the
   * request when the condition is true; null for an `if` in a server.
   */
  | { readonly op: 'if'; readonly condition: RewriteCondition; readonly level: number | null; readonly steps: readonly RewriteStep[] };

/** ngx_http_rewrite_module's settings of one level. */
export interface RewriteSettings {
  /** The level's own script (nginx does not inherit scripts); null when it has none. */
  readonly script: readonly RewriteStep[] | null;
  /** `rewrite_log`: notice-level lines for each regex tried and each rewrite. @default false */
  readonly log: boolean;
  /** `uninitialized_variable_warn`: warn when a `set` variable is read before it is set. @default true */
  readonly uninitializedWarn: boolean;
}

export type NextUpstreamCondition =
  | 'error' | 'timeout' | 'invalid_header'
  | 'http_500' | 'http_502' | 'http_503' | 'http_504' | 'http_403' | 'http_404' | 'http_429'
  | 'non_idempotent';

export interface ProxyPass {
  /** The URL as written. */
  readonly url: string;
  /** 'fastcgi' for `fastcgi_pass ADDRESS` (its settings in {@link Settings.fastcgi}). */
  readonly scheme: 'http' | 'https' | 'fastcgi';
  /** Key into HttpConfig.upstreams (implicit upstreams are named "host:port"). */
  readonly upstream: string;
  /** The URI part of the URL ("/", "/api/"), or null when the URL has none. */
  readonly uri: string | null;
  /** The value of `$proxy_host`: the host (and port unless it is the scheme's default, 80 or 443) from the URL. */
  readonly proxyHost: string;
  /** For `https://`: the TLS settings of the location, with files read at load. Null for `http://`. */
  readonly tls: UpstreamTls | null;
  /**
   * The URL when it has variables: evaluated per request, its host matched against the upstream
   * groups first, then resolved with `resolver` (`upstream` is then the URL as written).
   */
  readonly variable?: ComplexValue;
  /** For a URL with variables: its evaluated URI replaces the request's entirely (nginx). */
  readonly wholeUri?: boolean;
}

export type ProxyRedirect =
  | { readonly mode: 'off' }
  | { readonly mode: 'default' }
  | { readonly mode: 'rules'; readonly rules: readonly { readonly from: ComplexValue | RegExp; readonly to: ComplexValue }[] };

/**
 * One `proxy_cookie_domain` / `proxy_cookie_path` line. A string `from` matches a domain exactly
 * (case-insensitively, leading dots aside) or a path as a prefix; a regex replaces the whole value.
 */
export interface CookieRewrite {
  readonly from: ComplexValue | RegExp;
  readonly to: ComplexValue;
}

/** One `proxy_cookie_flags COOKIE FLAG...` line: the cookie name (or a caseless regex) and its flags, evaluated per response. */
export interface CookieFlagsRule {
  readonly cookie: ComplexValue | RegExp;
  readonly flags: readonly ComplexValue[];
}

/** Every setting that nginx inherits http > server > location, already merged for one level. */
export interface Settings {
  /** `proxy_pass`: not inherited (location-level). */
  readonly proxyPass: ProxyPass | null;
  /** ngx_http_rewrite_module: the level's script (`set`, `if`, `rewrite`, `return`, `break`) and flags. */
  readonly rewrite: RewriteSettings;
  /** @default '1.0' */
  readonly proxyHttpVersion: '1.0' | '1.1';
  /** The effective proxy_set_header list (nginx: a level with none inherits its parent's). */
  readonly proxySetHeaders: readonly HeaderRule[];
  /** @default 60000 */
  readonly proxyConnectTimeout: number;
  /** @default 60000 */
  readonly proxyReadTimeout: number;
  /** @default 60000 */
  readonly proxySendTimeout: number;
  /** @default { mode: 'default' } */
  readonly proxyRedirect: ProxyRedirect;
  /** Empty set means `off`. @default error, timeout */
  readonly proxyNextUpstream: ReadonlySet<NextUpstreamCondition>;
  /** 0 = unlimited. @default 0 */
  readonly proxyNextUpstreamTries: number;
  /** 0 = unlimited. @default 0 */
  readonly proxyNextUpstreamTimeout: number;
  /** Accepted; Sluice always streams. @default true */
  readonly proxyBuffering: boolean;
  /** `proxy_hide_header` names (lower case): upstream response headers not passed (a level with its own inherits none). */
  readonly proxyHideHeaders: readonly string[];
  /** `proxy_pass_header` names (lower case): of the headers hidden by default, those passed. */
  readonly proxyPassHeaders: readonly string[];
  /** `proxy_pass_request_headers`: the client's own header lines go upstream. @default true */
  readonly proxyPassRequestHeaders: boolean;
  /** `proxy_pass_request_body`: the client's body goes upstream. @default true */
  readonly proxyPassRequestBody: boolean;
  /**
   * `proxy_buffer_size`: the largest upstream response head; a larger one is nginx's 502 "upstream
   * sent too big header" (a proxy_next_upstream invalid_header). @default 4096
   */
  readonly proxyBufferSize: number;
  /** `proxy_cookie_domain` lines, first match wins; empty for `off` (the default). */
  readonly proxyCookieDomain: readonly CookieRewrite[];
  /** `proxy_cookie_path` lines, first match wins; empty for `off` (the default). */
  readonly proxyCookiePath: readonly CookieRewrite[];
  /** `proxy_cookie_flags` lines, the first naming the cookie wins; empty for `off` (the default). */
  readonly proxyCookieFlags: readonly CookieFlagsRule[];
  /**
   * `native_tunnels auto | on | off` (Sluice's own): whether plain-TCP tunnels move to the native
   * addon's I/O thread once open; `on` is `auto` that `-t` refuses where the addon is missing.
   * @default 'auto'
   */
  readonly nativeTunnels: NativeTunnelsMode;
  /** The effective add_header list (inherited like proxy_set_header). */
  readonly addHeaders: readonly AddHeaderRule[];
  /** Empty array means `access_log off`. */
  readonly accessLogs: readonly AccessLogTarget[];
  readonly errorLogs: readonly ErrorLogTarget[];
  /** `keepalive_timeout` for client connections. @default 75000 */
  readonly keepaliveTimeout: number;
  /**
   * The second `keepalive_timeout` value, in seconds: sent as `Keep-Alive: timeout=N` on
   * keep-alive responses; 0 sends no Keep-Alive header (nginx's default). @default 0
   */
  readonly keepaliveHeader: number;
  /**
   * `client_header_timeout` (http, server): the longest a client may take to send a request head,
   * counted from the connection (the first request) or from the first byte of the head (a
   * keep-alive request); the default server of the address decides. @default 60000
   */
  readonly clientHeaderTimeout: number;
  /** `client_body_timeout`: the longest wait between two reads of a request body. @default 60000 */
  readonly clientBodyTimeout: number;
  /** `send_timeout`: the longest a response write may wait for the client to read. @default 60000 */
  readonly sendTimeout: number;
  /**
   * `client_max_body_size`: the largest request body, in bytes (0: no limit). A declared
   * Content-Length over it gets 413 before any byte of the body is read; a chunked or HTTP/2 body
   * is counted as it streams. @default 1048576
   */
  readonly clientMaxBodySize: number;
  /** `client_body_buffer_size`: checked and kept; bodies stream, nothing is buffered whole. @default 16384 */
  readonly clientBodyBufferSize: number;
  /** `keepalive_requests`: requests served on one client connection before it closes. @default 1000 */
  readonly keepaliveRequests: number;
  /** `keepalive_time`: no new request is kept alive on a connection older than this. @default 3600000 */
  readonly keepaliveTime: number;
  /** `keepalive_disable`: browsers whose connections are not kept alive. @default ['msie6'] */
  readonly keepaliveDisable: readonly ('msie6' | 'safari')[];
  /** `client_header_buffer_size` (http, server): checked and kept; Node's parser sizes its own buffer. @default 1024 */
  readonly clientHeaderBufferSize: number;
  /**
   * `large_client_header_buffers NUMBER SIZE` (http, server): a request line longer than SIZE gets
   * 414, a header line longer than SIZE 400 ("Request Header Or Cookie Too Large"), a head over
   * NUMBER x SIZE the same. @default { number: 4, size: 8192 }
   */
  readonly largeClientHeaderBuffers: { readonly number: number; readonly size: number };
  /** `limit_rate`: bytes per second of a response body to the client; 0 for no limit. @default 0 */
  readonly limitRate: number;
  /** `limit_rate_after`: bytes sent before limit_rate applies. @default 0 */
  readonly limitRateAfter: number;
  /** `lingering_close`: when a connection Sluice ends reads on until the client closes. @default 'on' */
  readonly lingeringClose: 'on' | 'off' | 'always';
  /** `lingering_time`: the longest a lingering close lasts. @default 30000 */
  readonly lingeringTime: number;
  /** `lingering_timeout`: a lingering close ends after this long without a byte from the client. @default 5000 */
  readonly lingeringTimeout: number;
  /** `reset_timedout_connection`: a timed-out connection is reset (RST) instead of closed. @default false */
  readonly resetTimedoutConnection: boolean;
  /** `auth_basic`: the realm, or null for `off` (each inherited on its own, as in nginx). @default null */
  readonly authBasicRealm: string | null;
  /** `auth_basic_user_file`, resolved against the prefix; null: none (no check, as in nginx). @default null */
  readonly authBasicUserFile: string | null;
  /** `set_real_ip_from`: trusted addresses whose `real_ip_header` names the client (a level with its own inherits none). */
  readonly realIpFrom: readonly Cidr[];
  /** `real_ip_header`, lower-cased. @default 'x-real-ip' */
  readonly realIpHeader: string;
  /** `real_ip_recursive`: skip trusted addresses from the right of X-Forwarded-For. @default false */
  readonly realIpRecursive: boolean;
  /** `websocket_allowed_origins`: the Origins a WebSocket handshake may come from; null: any (the default). */
  readonly websocketOrigins: readonly OriginRule[] | null;
  /** `forward_proxy` and its allowlist and authentication (Sluice's own, server level; src/proxy/forward/). */
  readonly forwardProxy: ForwardProxySettings;
  /**
   * `websocket_max_message_size`: the most payload bytes (as on the wire: compressed under
   * permessage-deflate) a WebSocket message may carry, all its fragments together; 0: no limit. @default 0
   */
  readonly websocketMaxMessage: number;
  /** `websocket_max_frame_size`: the most payload bytes (as on the wire) one WebSocket frame may carry; 0: no limit. @default 0 */
  readonly websocketMaxFrame: number;
  /** `websocket_ping_interval` (ms): a tunnel leg silent this long gets a ping from Sluice; 0: never. @default 0 */
  readonly websocketPingInterval: number;
  /** `websocket_ping_timeout` (ms): a leg that sends nothing this long after Sluice's ping is closed as dead; 0: never. @default 0 */
  readonly websocketPingTimeout: number;
  /** `websocket_message_rate`: messages per second a WebSocket tunnel passes per direction; null: `off`. @default null */
  readonly websocketMessageRate: WebSocketMessageRate | null;
  /** `charset`: added to the Content-Type of responses of `charsetTypes` that name none; null: `off`. @default null */
  readonly charset: string | null;
  /** `resolver`: null without one (names in proxy_pass with variables then give 502). @default null */
  readonly resolver: ResolverConfig | null;
  /** `resolver_timeout` (ms). @default 30000 */
  readonly resolverTimeout: number;
  /** `charset_types`: MIME types `charset` applies to ('*' for all). */
  readonly charsetTypes: readonly string[];
  /** `default_type`, used for `return` bodies. @default 'text/plain' */
  readonly defaultType: string;
  /** `ssl_*` settings of a server (http, server; each directive inherited on its own). */
  readonly ssl: SslSettings;
  /** `http2 on|off` (http, server): offer HTTP/2 on this server's ssl addresses. @default false */
  readonly http2: boolean;
  /** `proxy_ssl_*` settings for `proxy_pass https://` (http, server, location). */
  readonly proxySsl: ProxySslSettings;
  /**
   * `allow` / `deny` rules in order (ngx_http_access_module); a level with any rule of its own
   * inherits none. Empty = no access control. @default []
   */
  readonly access: readonly AccessRule[];
  /** The status content handler of this level (`stub_status` etc.): not inherited. @default null */
  readonly adminHandler: AdminHandler | null;
  /** `gzip_*` and `brotli_*` (http, server, location; each directive inherited on its own). */
  readonly compression: CompressionSettings;
  /** `ssi_*` (ngx_http_ssi_module; http, server, location, `ssi` also in `if`). */
  readonly ssi: SsiSettings;
  /** Static files (ngx_http_core, index, autoindex, static modules): `root`, `index`, `try_files`... */
  readonly files: FileSettings;
  /** ngx_http_core_module and ngx_http_headers_module flags that shape requests and responses. */
  readonly core: CoreSettings;
  /** Request and response body buffering (`proxy_request_buffering`, `client_body_*`, `proxy_buffers`...). */
  readonly buffering: BufferingSettings;
  /** `limit_conn*` and `limit_req*` (src/config/directives/limits.ts). */
  readonly limits: LimitSettings;
  /** `proxy_cache*` and `proxy_no_cache` (each inherited on its own; src/proxy/cache/ is the runtime). */
  readonly cache: CacheSettings;
  /** ngx_http_fastcgi_module's settings (`fastcgi_param`, `fastcgi_read_timeout`...), each inherited on its own. */
  readonly fastcgi: FastcgiSettings;
}

/** `proxy_cache_valid [CODE ...] TIME`: `codes` null for `any`. */
export interface CacheValidRule {
  readonly codes: readonly number[] | null;
  /** ms; 0 caches nothing for these codes. */
  readonly time: number;
}

/** The proxy cache settings of one level (src/config/cache-settings.ts has the defaults). */
export interface CacheSettings {
  /** `proxy_cache ZONE | off`: the `proxy_cache_path` keys_zone name. @default null (off) */
  readonly zone: string | null;
  /** `proxy_cache_key`; null: nginx's `$scheme$proxy_host$request_uri`. @default null */
  readonly key: ComplexValue | null;
  /** `proxy_cache_valid` lines (a level with any inherits none). @default [] */
  readonly valid: readonly CacheValidRule[];
  /** `proxy_cache_methods`, upper case; GET and HEAD are always in. @default GET HEAD */
  readonly methods: readonly string[];
  /** `proxy_cache_min_uses`. @default 1 */
  readonly minUses: number;
  /** `proxy_cache_bypass` values: one non-empty and not "0" answers from upstream. @default [] */
  readonly bypass: readonly ComplexValue[];
  /** `proxy_no_cache` values: one non-empty and not "0" keeps the response out of the cache. @default [] */
  readonly noCache: readonly ComplexValue[];
  /** `proxy_cache_convert_head`: a HEAD goes upstream as GET. @default true */
  readonly convertHead: boolean;
  /**
   * `proxy_cache_use_stale`: when an expired entry answers instead (`error`, `timeout`,
   * `invalid_header`, `updating`, `http_500`...). Empty for `off`. @default []
   */
  readonly useStale: readonly string[];
  /** `proxy_cache_lock`: one request per key fills the cache, the others wait for it. @default false */
  readonly lock: boolean;
  /** `proxy_cache_lock_timeout` (ms): how long a request waits for the lock. @default 5000 */
  readonly lockTimeout: number;
  /** `proxy_cache_lock_age` (ms): a lock held this long lets one more request go upstream. @default 5000 */
  readonly lockAge: number;
  /** `proxy_cache_revalidate`: an expired entry is refreshed with a conditional request. @default false */
  readonly revalidate: boolean;
  /**
   * `proxy_cache_background_update`: with `proxy_cache_use_stale updating`, an expired entry
   * answers at once (STALE) while a background request refreshes it. @default false
   */
  readonly backgroundUpdate: boolean;
  /** `proxy_cache_max_range_offset`: a range starting beyond it bypasses the cache; null: no limit. @default null */
  readonly maxRangeOffset: number | null;
}

/** One `proxy_cache_path` (http): where a cache lives and how large it may grow. */
export interface CacheZoneConfig {
  /** keys_zone name. */
  readonly name: string;
  /** Absolute directory. */
  readonly path: string;
  /** `levels=1:2`: characters per directory level, taken from the end of the md5 (nginx). @default [] */
  readonly levels: readonly number[];
  /** keys_zone size (bytes): bounds the number of entries (nginx: about 8000 keys per megabyte). */
  readonly keysZoneSize: number;
  /** `inactive` (ms): an entry not used for this long is removed. @default 600000 */
  readonly inactive: number;
  /** `max_size` (bytes, 0: no limit). @default 0 */
  readonly maxSize: number;
  /** `min_free` (bytes, 0: no check). @default 0 */
  readonly minFree: number;
  /** `use_temp_path`: entries are written under proxy_temp_path first (else in the cache directory). @default true */
  readonly useTempPath: boolean;
  readonly loc: SourceLoc;
}

/** One `fastcgi_param NAME VALUE [if_not_empty]` line. */
export interface FastcgiParam {
  readonly name: string;
  readonly value: ComplexValue;
  /** The parameter is not sent when its value is empty. */
  readonly ifNotEmpty: boolean;
}

/**
 * ngx_http_fastcgi_module: what a `fastcgi_pass` location sends and how it talks to the server.
 * The timeouts, buffers and next-upstream rules mean what their proxy_* twins mean; the session
 * reads them through the FastCGI view of the settings (proxy/session/proxy-route.ts).
 */
export interface FastcgiSettings {
  /** `fastcgi_param` lines (a level with any inherits none, nginx's array merge). @default [] */
  readonly params: readonly FastcgiParam[];
  /** `fastcgi_index`: appended to `$fastcgi_script_name` for a URI ending in "/". @default null */
  readonly index: string | null;
  /** `fastcgi_split_path_info`: the regex whose two captures are the script name and path info. @default null */
  readonly splitPathInfo: RegExp | null;
  /** `fastcgi_keep_conn`: FCGI_KEEP_CONN, and the connection may go back to the upstream's keepalive cache. @default false */
  readonly keepConn: boolean;
  /** @default 60000 */
  readonly connectTimeout: number;
  /** @default 60000 */
  readonly sendTimeout: number;
  /** @default 60000 */
  readonly readTimeout: number;
  /** `fastcgi_intercept_errors`. @default false */
  readonly interceptErrors: boolean;
  /** `fastcgi_hide_header` names (lower case). @default [] */
  readonly hideHeaders: readonly string[];
  /** `fastcgi_pass_header` names (lower case). @default [] */
  readonly passHeaders: readonly string[];
  /** `fastcgi_ignore_headers` (lower case). @default empty */
  readonly ignoreHeaders: ReadonlySet<string>;
  /** `fastcgi_pass_request_headers`: the client's headers go as HTTP_* params. @default true */
  readonly passRequestHeaders: boolean;
  /** `fastcgi_pass_request_body`. @default true */
  readonly passRequestBody: boolean;
  /** `fastcgi_request_buffering`. @default true */
  readonly requestBuffering: boolean;
  /** `fastcgi_buffering`. @default true */
  readonly buffering: boolean;
  /** `fastcgi_buffer_size`: the largest response head. @default 4096 */
  readonly bufferSize: number;
  /** `fastcgi_buffers`. @default { number: 8, size: 4096 } */
  readonly buffers: { readonly number: number; readonly size: number };
  /** `fastcgi_busy_buffers_size`; null: nginx's default from the buffer sizes. @default null */
  readonly busyBuffersSize: number | null;
  /** `fastcgi_temp_path`. @default { path: PREFIX/fastcgi_temp, levels: [] } */
  readonly tempPath: TempPath;
  /** `fastcgi_max_temp_file_size`. @default 1073741824 */
  readonly maxTempFileSize: number;
  /** `fastcgi_temp_file_write_size`; null: nginx's default. @default null */
  readonly tempFileWriteSize: number | null;
  /** `fastcgi_ignore_client_abort`. @default false */
  readonly ignoreClientAbort: boolean;
  /** `fastcgi_next_upstream`; empty means `off`. @default error, timeout */
  readonly nextUpstream: ReadonlySet<NextUpstreamCondition>;
  /** @default 0 */
  readonly nextUpstreamTries: number;
  /** @default 0 */
  readonly nextUpstreamTimeout: number;
}

/** A `*_temp_path PATH [L1 [L2 [L3]]]`: the directory (absolute) and the hashed sub-directory levels. */
export interface TempPath {
  readonly path: string;
  readonly levels: readonly number[];
}

/**
 * nginx's body buffering, each directive inherited on its own (src/config/buffering.ts has the
 * defaults; src/proxy/body/ the runtime).
 */
export interface BufferingSettings {
  /** `proxy_request_buffering`: the whole request body is read before the upstream is chosen. @default true */
  readonly requestBuffering: boolean;
  /** `client_body_temp_path`. @default { path: PREFIX/client_body_temp, levels: [] } */
  readonly clientBodyTempPath: TempPath;
  /** `client_body_in_file_only`: always a temp file; `on` keeps it after the request. @default 'off' */
  readonly clientBodyInFileOnly: 'off' | 'on' | 'clean';
  /** `client_body_in_single_buffer`: a body in memory is one buffer (always so in Sluice). @default false */
  readonly clientBodyInSingleBuffer: boolean;
  /** `proxy_set_body`: the body sent upstream instead of the client's. @default null */
  readonly proxySetBody: ComplexValue | null;
  /** `proxy_method`: the method sent upstream instead of the client's. @default null */
  readonly proxyMethod: ComplexValue | null;
  /** `proxy_ignore_client_abort`: a client that leaves does not cancel the upstream request. @default false */
  readonly ignoreClientAbort: boolean;
  /** `proxy_ignore_headers`: upstream headers (lower case) whose processing is off. @default empty */
  readonly ignoreHeaders: ReadonlySet<string>;
  /** `proxy_buffers NUMBER SIZE`: the memory for a buffered response body. @default { number: 8, size: 4096 } */
  readonly proxyBuffers: { readonly number: number; readonly size: number };
  /** `proxy_busy_buffers_size`; null: twice proxy_buffer_size or one buffer, the larger. @default null */
  readonly busyBuffersSize: number | null;
  /** `proxy_temp_path`. @default { path: PREFIX/proxy_temp, levels: [] } */
  readonly proxyTempPath: TempPath;
  /** `proxy_max_temp_file_size`: the largest temp file of a buffered response (0: none). @default 1073741824 */
  readonly maxTempFileSize: number;
  /** `proxy_temp_file_write_size`; null: twice the larger of proxy_buffer_size and one buffer. @default null */
  readonly tempFileWriteSize: number | null;
}

/**
 * Where a level's files are (`root` or `alias`; a level with neither inherits both from its
 * parent, nginx's merge). The path is made absolute against the prefix where it is written
 * (unless it starts with a variable: then when the request evaluates it).
 */
export interface DocumentRoot {
  readonly path: ComplexValue;
  /**
   * null for `root` (the URI is appended to the path); for `alias` the length of the location
   * prefix the path replaces; 'regex' for `alias` in a regex location (the path is the whole file
   * name, the URI is not appended).
   */
  readonly alias: number | 'regex' | null;
  /** For a path that starts with a variable: what a relative value is resolved against. */
  readonly prefix: string;
}

/** `try_files FILE ... FALLBACK;` (ngx_http_try_files_module; not inherited). */
export interface TryFilesConfig {
  /** The files tested in order; `dir` for one written with a trailing slash (it must be a directory). */
  readonly tries: readonly { readonly value: ComplexValue; readonly dir: boolean }[];
  /** `=CODE`, or a URI / `@name` (after evaluation) to redirect to internally. */
  readonly fallback: { readonly code: number } | { readonly uri: ComplexValue };
}

export type AutoindexFormat = 'html' | 'json' | 'jsonp' | 'xml';

/** The settings of ngx_http_core, index, autoindex and static that serve files, merged for one level. */
export interface FileSettings {
  /** @default root html (relative to the prefix) */
  readonly root: DocumentRoot;
  /** `index` files, in order. @default ['index.html'] */
  readonly index: readonly ComplexValue[];
  /** `try_files` of this level (not inherited). @default null */
  readonly tryFiles: TryFilesConfig | null;
  /** @default false */
  readonly autoindex: boolean;
  /** @default true */
  readonly autoindexExactSize: boolean;
  /** @default 'html' */
  readonly autoindexFormat: AutoindexFormat;
  /** @default false */
  readonly autoindexLocaltime: boolean;
  /** Extension (lower case) -> MIME type, from `types {}`. @default nginx's built-in html, gif, jpg */
  readonly types: ReadonlyMap<string, string>;
  /** @default true */
  readonly etag: boolean;
  /** @default 'exact' */
  readonly ifModifiedSince: 'off' | 'exact' | 'before';
  /** `max_ranges`; null is nginx's default (no limit, and the multipart size check). @default null */
  readonly maxRanges: number | null;
  /** @default 'off' */
  readonly disableSymlinks: 'off' | 'on' | 'if_not_owner';
  /** `disable_symlinks ... from=PART`: the part of the path not checked. @default null */
  readonly symlinksFrom: ComplexValue | null;
  /** @default true */
  readonly logNotFound: boolean;
  /** `internal`: only internal redirects reach this location. @default false */
  readonly internal: boolean;
}

/** `expires` (null is `off`): nginx's ngx_http_expires_t with its time. */
export type ExpiresSetting =
  | { readonly kind: 'epoch' }
  | { readonly kind: 'max' }
  /** TIME from the request (`access`), from the response's Last-Modified (`modified`), or `@TIME` of day (`daily`); seconds may be negative. */
  | { readonly kind: 'access' | 'modified' | 'daily'; readonly seconds: number }
  /** A value with variables, parsed per response (`expires $expires;` with a map). */
  | { readonly kind: 'variable'; readonly modified: boolean; readonly value: ComplexValue };

/**
 * Flags of ngx_http_core_module and ngx_http_headers_module, each inherited on its own. The
 * request-head ones (`merge_slashes`, `underscores_in_headers`, `ignore_invalid_headers`) are read
 * from the address's default server, as nginx reads them before it knows the virtual server.
 */
export interface CoreSettings {
  /** `server_tokens`: what the Server header and error pages say. @default 'off' (nginx: on) */
  readonly serverTokens: 'on' | 'off' | 'build';
  /** @default null (off) */
  readonly expires: ExpiresSetting | null;
  /** @default true */
  readonly chunkedTransferEncoding: boolean;
  /** @default true */
  readonly absoluteRedirect: boolean;
  /** @default true */
  readonly portInRedirect: boolean;
  /** @default false */
  readonly serverNameInRedirect: boolean;
  /** @default true */
  readonly mergeSlashes: boolean;
  /** @default false */
  readonly underscoresInHeaders: boolean;
  /** @default true */
  readonly ignoreInvalidHeaders: boolean;
  /** `open_log_file_cache`; null is `off`. @default null */
  readonly openLogFileCache: OpenLogFileCache | null;
  /**
   * `error_page` lines of the level, in order; a level with its own lines replaces the inherited
   * list entirely (ngx_http_core_merge_loc_conf). null: none. @default null
   */
  readonly errorPages: readonly ErrorPage[] | null;
  /** `recursive_error_pages`. @default false */
  readonly recursiveErrorPages: boolean;
  /** `proxy_intercept_errors` (kept with the error pages it applies). @default false */
  readonly proxyInterceptErrors: boolean;
}

/** One status of an `error_page` line (nginx's ngx_http_err_page_t). */
export interface ErrorPage {
  readonly status: number;
  /** -1: the error's own status; 0 (`=`): the target's status; otherwise `=code`. */
  readonly overwrite: number;
  /** The URI, `@name` or URL. */
  readonly target: ComplexValue;
  /** The `?args` of a URI written without variables, split off at load time (nginx); null: none. */
  readonly args: string | null;
}

/**
 * One `allow` / `deny` line. `family` 'all' matches every client; otherwise the client address
 * (IPv4, or IPv6 as 16 bytes) matches when `(client & mask) == addr`.
 */
export interface AccessRule {
  readonly deny: boolean;
  readonly family: 'all' | 4 | 6;
  /** Network address bytes (4 or 16), already masked; empty for 'all'. */
  readonly addr: readonly number[];
  /** Mask bytes, as long as `addr`. */
  readonly mask: readonly number[];
  /** The argument as written ("10.0.0.0/8", "all"). */
  readonly text: string;
  readonly loc: SourceLoc;
}

/** The status content handlers: nginx's `stub_status` and Sluice's metrics, status and dashboard. */
export type AdminHandler = 'stub_status' | 'metrics' | 'status' | 'dashboard';

/** `native_tunnels`: `auto` uses the addon where it is built, `on` requires it, `off` never uses it. */
export type NativeTunnelsMode = 'auto' | 'on' | 'off';

/**
 * `if`: the nameless configuration an `if` block in a location makes (nginx's `noname` location,
 * named like its parent); the location search never finds it, a true condition selects it.
 */
export type LocationModifier = '=' | '^~' | '~' | '~*' | '' | '@' | 'if';

export interface LocationConfig {
  readonly modifier: LocationModifier;
  /** The pattern as written (a URI prefix, exact URI, regex source or @name). */
  readonly pattern: string;
  /** Compiled for `~` and `~*`, else null. */
  readonly regex: RegExp | null;
  readonly locations: readonly LocationConfig[];
  readonly settings: Settings;
  readonly loc: SourceLoc;
}

/**
 * One destination of `forward_proxy_allow`: a host name (`example.com`), its subdomains
 * (`*.example.com`; `.example.com` for both), or an address or network (`10.0.0.0/8`), each with
 * the ports it may be reached on.
 */
export interface ForwardAllowRule {
  readonly kind: 'name' | 'subdomains' | 'address';
  /** Lower-cased name (without `*.` or the leading dot); '' for an address rule. */
  readonly name: string;
  /** `.example.com`: the name itself and its subdomains. */
  readonly withBase: boolean;
  /** For an address rule: the network. */
  readonly cidr: Cidr | null;
  /** Inclusive port ranges. No port written: 80 and 443. */
  readonly ports: readonly (readonly [number, number])[];
  /** The rule as written, for logs. */
  readonly text: string;
}

/** `forward_proxy`, `forward_proxy_allow`, `forward_proxy_auth_basic`, `forward_proxy_auth_basic_user_file`. */
export interface ForwardProxySettings {
  /** @default false */
  readonly on: boolean;
  /** @default [] (nothing is allowed) */
  readonly allow: readonly ForwardAllowRule[];
  /** The realm of `Proxy-Authenticate`, or null: no authentication. @default null */
  readonly authRealm: string | null;
  /** @default null */
  readonly authUserFile: string | null;
}

export interface ServerConfig {
  readonly listens: readonly Listen[];
  /** In config order; the first is `$server_name`. */
  readonly serverNames: readonly ServerName[];
  /** The first server_name as written ("" when none). */
  readonly primaryName: string;
  readonly locations: readonly LocationConfig[];
  /** Server-level settings (used for server-level `return` and for requests no location matches). */
  readonly settings: Settings;
  /** The certificates and client CA of this server, read and checked at load; null without `ssl_certificate`. */
  readonly tls: ServerTls | null;
  readonly loc: SourceLoc;
}

export interface HttpConfig {
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly matches: ReadonlyMap<string, MatchConfig>;
  readonly maps: readonly MapConfig[];
  /** The variables `set` defines, by slot (RewriteStep `set`'s index). */
  readonly setVariables: readonly string[];
  readonly logFormats: ReadonlyMap<string, LogFormat>;
  /** `proxy_cache_path` zones by keys_zone name. */
  readonly cacheZones: ReadonlyMap<string, CacheZoneConfig>;
  readonly servers: readonly ServerConfig[];
  readonly settings: Settings;
  /** `limit_conn_zone` / `limit_req_zone` by zone name. */
  readonly limitZones: ReadonlyMap<string, LimitZone>;
}

/**
 * A `limit_conn_zone` or `limit_req_zone`: what is counted per value of `key` (an empty value is
 * not counted). nginx's shared memory zone; here a store (src/limits/) keeps it by name.
 */
export interface LimitZone {
  readonly kind: 'conn' | 'req';
  readonly name: string;
  readonly key: ComplexValue;
  /** The key as written (nginx compares it on reload and names it in messages). */
  readonly keyText: string;
  /** Bytes, as written after `zone=NAME:`. */
  readonly size: number;
  /** `rate=` of a limit_req zone in milli-requests per second (nginx: 1 is 0.001 r/s); 0 for conn. */
  readonly rate: number;
  /** Sluice's trailing `fleet`: counted across the fleet in Redis (docs/fleet.md "Shared limits"). */
  readonly fleet?: true;
  readonly at: SourceLoc;
}

/** One `limit_conn ZONE N` line. */
export interface LimitConnRule {
  readonly zone: string;
  readonly conn: number;
}

/** One `limit_req zone=ZONE [burst=N] [nodelay | delay=N]` line; burst and delay in milli-requests. */
export interface LimitReqRule {
  readonly zone: string;
  readonly burst: number;
  readonly delay: number;
}

/**
 * ngx_http_limit_conn_module and ngx_http_limit_req_module at one level: the lists are inherited
 * only by a level with none of its own; each other directive on its own.
 */
export interface LimitSettings {
  /** @default [] */
  readonly conn: readonly LimitConnRule[];
  /** @default 503 */
  readonly connStatus: number;
  /** @default 'error' */
  readonly connLogLevel: LogLevel;
  /** @default false */
  readonly connDryRun: boolean;
  /** @default [] */
  readonly req: readonly LimitReqRule[];
  /** @default 503 */
  readonly reqStatus: number;
  /** @default 'error' (delays log one level lower, info stays info) */
  readonly reqLogLevel: LogLevel;
  /** @default false */
  readonly reqDryRun: boolean;
}

/** Main-context directives about the processes themselves (ngx_core_module). */
export interface ProcessSettings {
  /** `daemon`: the command line detaches and returns once Sluice serves. @default false (nginx: on) */
  readonly daemon: boolean;
  /** `worker_rlimit_nofile`: soft and hard RLIMIT_NOFILE of the workers; null: unchanged. @default null */
  readonly rlimitNofile: number | null;
  /**
   * `worker_cpu_affinity`: CPU numbers per worker (worker N takes entry N, the last for the rest),
   * or `auto` with the CPUs to spread the workers over one each. Null: not set.
   */
  readonly cpuAffinity: { readonly auto: boolean; readonly sets: readonly (readonly number[])[] } | null;
  /** `env NAME[=VALUE]` lines: set (or, without a value, keep) in the worker processes. @default [] */
  readonly env: readonly { readonly name: string; readonly value: string | null }[];
}

/** `user USER [GROUP]`: who the worker processes run as. */
export interface RunAs {
  readonly user: string;
  readonly group: string;
  readonly uid: number;
  readonly gid: number;
}

export interface Config {
  /** Absolute path of the main config file, or "<inline>" for config text. */
  readonly file: string;
  readonly prefix: string;
  /**
   * `user`: worker processes give up root for this user and group once the listen sockets are
   * bound. Null when not written, or when Sluice does not run as root (nginx ignores it then, with
   * a warning).
   */
  readonly user: RunAs | null;
  /** `daemon`, `worker_rlimit_nofile`, `worker_cpu_affinity`, `env`. */
  readonly process: ProcessSettings;
  /**
   * Every file the `ssl_*` and `proxy_ssl_*` directives named, as read (base64), by absolute path:
   * a primary hands them to its workers, which may no longer be allowed to read them.
   */
  readonly files: readonly { readonly path: string; readonly data: string }[];
  /** @default 1 */
  readonly workerProcesses: number | 'auto';
  /**
   * `pid`: absolute path of the pid file the command line writes (the library writes none);
   * without `pid`, `sluice.pid` in the prefix. Null only in configurations made by hand.
   * @default PREFIX/sluice.pid
   */
  readonly pid: string | null;
  /** `worker_shutdown_timeout`: how long a graceful stop waits for open tunnels. @default 10000 */
  readonly workerShutdownTimeout: number;
  /**
   * `websocket_drain_timeout TIME [JITTER]` (http): after a reload, a tunnel whose upstream server is
   * no longer in the config is closed (close 1001) TIME plus a random share of JITTER after the
   * reload; null (`off`, the default) keeps it until it ends.
   */
  readonly websocketDrain: { readonly timeout: number; readonly jitter: number } | null;
  /** Main-level error_log; defaults to stderr at `error`. */
  readonly errorLogs: readonly ErrorLogTarget[];
  /** `events { worker_connections N; }`. @default 512 */
  readonly workerConnections: number;
  /**
   * `events { accept_mutex on; }`: worker processes take new connections in turn (the primary
   * accepts and hands each to the next worker); off, each worker accepts for itself on the shared
   * listening socket (server/reuseport.ts). @default true (nginx: off)
   */
  readonly acceptMutex: boolean;
  /** `fleet URL [PARAM=VALUE ...]`: the Redis shared by the instances of a fleet; null without. */
  readonly fleet: FleetConfig | null;
  readonly http: HttpConfig | null;
  /** Every file read, in order, with its text (for `-T`). */
  readonly sources: readonly { readonly file: string; readonly text: string }[];
  /** Warnings found while loading (`level: 'warn'`), in reading order; `sluice -t` prints them. */
  readonly warnings: readonly ConfigProblem[];
}

/** One problem found in a config; all are collected before failing. */
export interface ConfigProblem {
  readonly message: string;
  readonly file: string;
  readonly line: number;
  /** What to do next, when there is something useful to say. */
  readonly hint?: string;
  /**
   * `warn` for a warning, which does not stop the config from loading (nginx's `[warn]`, e.g. a
   * deprecated directive); absent for an error (`[emerg]`).
   */
  readonly level?: 'warn';
}

export type TlsProtocol = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** A file named by a directive: absolute path and where the directive was written. */
export interface ConfigFileRef {
  readonly path: string;
  readonly loc: SourceLoc;
}

/** The `ssl_*` directives of one level, merged (ngx_http_ssl_module). */
export interface SslSettings {
  /** `ssl_certificate` lines in order (several: e.g. an RSA and an ECDSA chain). @default [] */
  readonly certificates: readonly ConfigFileRef[];
  /** `ssl_certificate_key` lines, paired with `certificates` by position. @default [] */
  readonly certificateKeys: readonly ConfigFileRef[];
  /** @default ['TLSv1.2', 'TLSv1.3'] */
  readonly protocols: readonly TlsProtocol[];
  /** OpenSSL cipher list for TLS 1.2 and below. @default 'HIGH:!aNULL:!MD5' */
  readonly ciphers: string;
  /** @default false */
  readonly preferServerCiphers: boolean;
  /** ms. @default 300000 */
  readonly sessionTimeout: number;
  /** @default true */
  readonly sessionTickets: boolean;
  /**
   * `ssl_session_cache`'s process-local part: `off`, `none` (nginx's default: nothing stored),
   * `nobuiltin` (only a shared cache was written), or `builtin[:N]` as a number of sessions.
   * @default 'none'
   */
  readonly sessionCache: 'off' | 'none' | 'nobuiltin' | number;
  /** `ssl_session_cache shared:NAME:SIZE`: a cache every worker process fills and reads. @default null */
  readonly sessionCacheShared: SessionCacheZone | null;
  /** `ssl_session_ticket_key` files in order: the first encrypts tickets. @default [] */
  readonly sessionTicketKeys: readonly ConfigFileRef[];
  /** `ssl_dhparam`: DH parameters for the DHE ciphers (none without it, as in nginx). @default null */
  readonly dhparam: ConfigFileRef | null;
  /** `ssl_ecdh_curve`: OpenSSL's curve list, or 'auto' (OpenSSL's own). @default 'auto' */
  readonly ecdhCurve: string;
  /** `ssl_stapling`. @default false */
  readonly stapling: boolean;
  /** `ssl_stapling_verify`: check responder answers before stapling them. @default false */
  readonly staplingVerify: boolean;
  /** `ssl_stapling_file`: a DER OCSP response stapled instead of asking a responder. @default null */
  readonly staplingFile: ConfigFileRef | null;
  /** `ssl_stapling_responder`: overrides the certificate's OCSP URL. @default null */
  readonly staplingResponder: string | null;
  /** `ssl_trusted_certificate`: CAs for OCSP and client verification, never sent to clients. @default null */
  readonly trustedCertificate: ConfigFileRef | null;
  /** `ssl_buffer_size`, accepted: Node.js decides the TLS record size. @default 16384 */
  readonly bufferSize: number;
  /** Pass phrases for encrypted keys, one per line. @default null */
  readonly passwordFile: ConfigFileRef | null;
  /** CA certificates (PEM) that client certificates must chain to. @default null */
  readonly clientCertificate: ConfigFileRef | null;
  /** @default 'off' */
  readonly verifyClient: 'off' | 'on' | 'optional';
  /** `ssl_verify_depth`: the most intermediate CA certificates a client chain may have. @default 1 */
  readonly verifyDepth: number;
  /** `ssl_crl`: PEM certificate revocation lists that client certificates are checked against. @default null */
  readonly crl: ConfigFileRef | null;
  /** `ssl_conf_command` lines, applied in order after the other settings (a level with any inherits none). @default [] */
  readonly confCommands: readonly SslConfCommand[];
  /**
   * `ssl on` (deprecated in nginx, which still honours it): where it was written, or null for
   * `ssl off` or not written. It makes TLS the addresses where its server is the default server.
   * @default null
   */
  readonly sslOn: SourceLoc | null;
}

/** A shared TLS session cache zone (`shared:NAME:SIZE`). */
export interface SessionCacheZone {
  readonly name: string;
  /** Bytes; about 4000 sessions per megabyte, as nginx. */
  readonly size: number;
}

/** One certificate chain and its private key as read at load time (PEM). */
export interface LoadedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  /** The key PEM as read (possibly encrypted: then `passphrase` opens it). */
  readonly key: string;
  readonly passphrase: string | null;
}

/** What a server needs to terminate TLS, read from disk when the config is loaded (and again on reload). */
export interface ServerTls {
  readonly certificates: readonly LoadedCertificate[];
  /** PEM of `ssl_client_certificate` and `ssl_trusted_certificate` (for ssl_verify_client), or null. */
  readonly clientCa: string | null;
  /** PEM of `ssl_dhparam`, or null. */
  readonly dhparam: string | null;
  /** The 48-byte ticket key Node.js uses (hex), from the first `ssl_session_ticket_key`; null: the process's own. */
  readonly ticketKeys: string | null;
  /**
   * OpenSSL's session id context: sessions resume only on servers with the same certificates and
   * client CAs (nginx's ngx_ssl_session_id_context).
   */
  readonly sessionIdContext: string;
  /** PEM of `ssl_crl`, or null. */
  readonly crl: string | null;
  /** OCSP stapling, one entry per certificate it applies to (none when `ssl_stapling` is off or was ignored). */
  readonly stapling: readonly StaplingConfig[];
}

/** What OCSP stapling needs for one certificate, read at load. */
export interface StaplingConfig {
  /** DER of the certificate (base64): Node.js names the certificate of a handshake by it. */
  readonly certificate: string;
  /** `ssl_stapling_file` content (base64 DER), stapled as it is; null: ask `responder`. */
  readonly file: string | null;
  /** DER of the issuer (base64), null with a stapling file. */
  readonly issuer: string | null;
  /** The responder URL (`ssl_stapling_responder`, else the certificate's OCSP URL); null with a file. */
  readonly responder: string | null;
  /** The certificates after the first in the `ssl_certificate` file (PEM): trusted signers, as nginx's OCSP_TRUSTOTHER. */
  readonly chain: string;
  /** `ssl_stapling_verify`. */
  readonly verify: boolean;
  /** PEM of `ssl_trusted_certificate` and `ssl_client_certificate`: where a responder's certificate must chain to. */
  readonly trusted: string;
  /** The `ssl_certificate` path, for log lines. */
  readonly name: string;
}

/** The `proxy_ssl_*` directives of one level, merged (ngx_http_proxy_module). */
export interface ProxySslSettings {
  /** @default false */
  readonly verify: boolean;
  /** CA certificates for verifying the upstream; null = Node's bundled CA list. @default null */
  readonly trustedCertificate: ConfigFileRef | null;
  /** Send SNI. @default false */
  readonly serverName: boolean;
  /** The name checked against the certificate (and sent as SNI); null = the proxy_pass host. @default null */
  readonly name: ComplexValue | null;
  /** Client certificate presented to the upstream. @default null */
  readonly certificate: ConfigFileRef | null;
  readonly certificateKey: ConfigFileRef | null;
  /** @default ['TLSv1.2', 'TLSv1.3'] */
  readonly protocols: readonly TlsProtocol[];
  /** @default 'DEFAULT' */
  readonly ciphers: string;
  /** Pass phrases for an encrypted `proxy_ssl_certificate_key`. @default null */
  readonly passwordFile: ConfigFileRef | null;
  /** Resume TLS sessions with the upstream servers (`proxy_ssl_session_reuse`). @default true */
  readonly sessionReuse: boolean;
  /** `proxy_ssl_verify_depth`: the most intermediate CA certificates the upstream's chain may have. @default 1 */
  readonly verifyDepth: number;
  /** `proxy_ssl_crl`: PEM certificate revocation lists the upstream's chain is checked against. @default null */
  readonly crl: ConfigFileRef | null;
  /** `proxy_ssl_conf_command` lines, applied in order after the other settings. @default [] */
  readonly confCommands: readonly SslConfCommand[];
}

/** One `ssl_conf_command` / `proxy_ssl_conf_command`: an OpenSSL command Sluice maps, spelt canonically. */
export interface SslConfCommand {
  readonly name: string;
  readonly value: string;
}

/** The TLS material for `proxy_pass https://` in one location, read at load time. */
export interface UpstreamTls {
  readonly verify: boolean;
  /** PEM, or null for Node's bundled CAs. */
  readonly ca: string | null;
  readonly serverName: boolean;
  /** null = the proxy_pass host. */
  readonly name: ComplexValue | null;
  readonly certificate: LoadedCertificate | null;
  readonly protocols: readonly TlsProtocol[];
  readonly ciphers: string;
  readonly sessionReuse: boolean;
  readonly verifyDepth: number;
  /** PEM CRLs, or null. */
  readonly crl: string | null;
  readonly confCommands: readonly SslConfCommand[];
}

/** `gzip_proxied` flags (ngx_http_core_module's bitmask). */
export type GzipProxiedFlag = 'off' | 'expired' | 'no-cache' | 'no-store' | 'private' | 'no_last_modified' | 'no_etag' | 'auth' | 'any';

/** `gzip_static` / `brotli_static`: whether to serve FILE.gz / FILE.br next to a static FILE. */
export type PrecompressedMode = 'off' | 'on' | 'always';

/** The MIME types a compressor applies to: `'*'` for any (even none), else lower-cased types. */
export type MimeTypes = '*' | ReadonlySet<string>;

/** Server-side includes (ngx_http_ssi_module), merged for one level. */
export interface SsiSettings {
  /** `ssi`. @default false */
  readonly enabled: boolean;
  /** `ssi_types`: text/html is always among them. @default text/html */
  readonly types: MimeTypes;
  /** `ssi_silent_errors`: a failed command outputs nothing instead of the error message. @default false */
  readonly silentErrors: boolean;
  /** `ssi_value_length`: the longest parameter value. @default 255 */
  readonly valueLength: number;
  /** `ssi_min_file_chunk` (a sendfile tuning in nginx; accepted, no effect here). @default 1024 */
  readonly minFileChunk: number;
  /** `ssi_last_modified`: keep Last-Modified (and a weak ETag) on processed responses. @default false */
  readonly lastModified: boolean;
}

/**
 * Response compression (ngx_http_gzip_module, the gzip parts of ngx_http_core_module,
 * ngx_http_gzip_static_module, and ngx_brotli's directives), merged for one level.
 */
export interface CompressionSettings {
  /** @default false */
  readonly gzip: boolean;
  /** `text/html` is always among them. @default text/html */
  readonly gzipTypes: MimeTypes;
  /** Responses whose Content-Length is below this are sent as they are. @default 20 */
  readonly gzipMinLength: number;
  /** zlib level 1-9. @default 1 */
  readonly gzipCompLevel: number;
  /** Which responses to requests with a Via header may be compressed. @default off */
  readonly gzipProxied: ReadonlySet<GzipProxiedFlag>;
  /** Send `Vary: Accept-Encoding` with responses the filters considered. @default false */
  readonly gzipVary: boolean;
  /** User-Agent regexes (case-insensitive) that get no gzip. @default [] */
  readonly gzipDisable: readonly RegExp[];
  /** `gzip_disable msie6`: MSIE 4-6 (not 6 SV1) get no gzip. @default false */
  readonly gzipDisableMsie6: boolean;
  /** The lowest request HTTP version that gets gzip. @default '1.1' */
  readonly gzipHttpVersion: '1.0' | '1.1';
  /** `gzip_buffers NUMBER SIZE`: output chunks of SIZE, at most NUMBER x SIZE held per response. @default 32 4k */
  readonly gzipBuffers: { readonly number: number; readonly size: number };
  /** @default 'off' */
  readonly gzipStatic: PrecompressedMode;
  /** ngx_brotli's `brotli`. @default false */
  readonly brotli: boolean;
  /** @default text/html */
  readonly brotliTypes: MimeTypes;
  /** Brotli quality 0-11. @default 6 */
  readonly brotliCompLevel: number;
  /** @default 20 */
  readonly brotliMinLength: number;
  /** @default 'off' */
  readonly brotliStatic: PrecompressedMode;
}

/** How a `fleet` URL reaches Redis: one server, through Sentinel, or a Redis Cluster. */
export type FleetMode = 'standalone' | 'sentinel' | 'cluster';

/** `fleet redis://...`: where the fleet's shared state lives and how members keep it (docs/fleet.md). */
export interface FleetConfig {
  readonly mode: FleetMode;
  /** Redis servers (standalone: one; sentinel: the sentinels; cluster: the seed nodes). */
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  /** `rediss://` (TLS to Redis; with Sentinel, to the master and the replicas). */
  readonly tls: boolean;
  /** `ca=FILE`: the PEM certificates (text, read at load) to trust for TLS instead of the system's; null: the system's. */
  readonly ca: string | null;
  /** ACL user name of the URL; null: the default user. */
  readonly username: string | null;
  /** Password of the URL; null: none. */
  readonly password: string | null;
  /** `sentinel_password=...`: the Sentinels' own password. */
  readonly sentinelPassword: string | null;
  /** Sentinel: the master's name (the URL's path). */
  readonly masterName: string | null;
  /** The URL's database number. @default 0 */
  readonly db: number;
  /** The URL as written, with the password masked: for logs and status pages. */
  readonly display: string;
  /** `name=NAME`: this instance's name; members are NAME/PID. @default the host name */
  readonly name: string;
  /** `key_prefix=PREFIX`. @default "sluice:" */
  readonly keyPrefix: string;
  /** `heartbeat=TIME` (ms): a member rewrites its record at least this often. @default 1000 */
  readonly heartbeat: number;
  /** `ttl=TIME` (ms): a record not rewritten for this long is gone (a dead member). @default 3 x heartbeat */
  readonly ttl: number;
  /** `counts_cache=TIME` (ms): how often members publish changed counts and read the others'. @default 250 */
  readonly countsCache: number;
  /** `timeout=TIME` (ms): connect and command time-out; a slower Redis counts as down. @default 1000 */
  readonly timeout: number;
  readonly loc: SourceLoc;
}
