/**
 * Mutable drafts the directive handlers fill in while the tree is walked. `resolve.ts` turns
 * them into the frozen `Config` once every directive has been seen (so upstreams and maps may be
 * used before they are defined, and DNS runs once for the whole config).
 */
import type { Cidr } from '../core/cidr.js';
import type { FilesDraft } from './files.js';
import type {
  FleetConfig,
  AccessLogTarget, AccessRule, CookieFlagsRule, CookieRewrite, AddHeaderRule, AdminHandler, BalanceMethod, BufferingSettings, CompressionSettings, FastcgiSettings, SsiSettings, CoreSettings, ErrorLogTarget, HeaderRule, HealthCheckConfig, ListenSocketOptions,
  LocationModifier, RewriteStep,
  ComplexValue, LogFormat, MapConfig, MatchConfig, NativeTunnelsMode, NextUpstreamCondition, ProxyRedirect, ResolverConfig, ServerName, SourceLoc,
  StickyCookie, StickyLearn, ProcessSettings, LimitSettings, LimitZone, ProxySslSettings, RunAs, SslSettings, OriginRule, ForwardAllowRule, WebSocketMessageRate,
  CacheSettings, CacheZoneConfig, RebalanceConfig,
} from './types.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** An access_log line; the format name is checked once every log_format has been seen. */
export type AccessLogDraft = AccessLogTarget;

/** proxy_pass as parsed, before it is tied to an explicit or implicit upstream. */
export interface ProxyPassDraft {
  readonly url: string;
  readonly scheme: 'http' | 'https' | 'fastcgi';
  /** Host as written (IPv6 without brackets). */
  readonly host: string;
  /** The port when written in the URL, else null (80, or 443 for https). */
  readonly port: number | null;
  readonly uri: string | null;
  readonly proxyHost: string;
  /** The URL compiled, when it has variables (host, port and uri are then unused). */
  readonly variable?: ComplexValue;
  /** `http://unix:/path:/uri`: the socket's path (host and port are then unused). */
  readonly unixPath?: string;
  readonly at: SourceLoc;
}

/** Settings written at one level (http, server or location); undefined means "not set here". */
export interface SettingsDraft {
  proxyPass?: ProxyPassDraft;
  /** Where this level's `set`/`if`/`rewrite`/`return`/`break` lines go, in file order. */
  rewriteSteps?: RewriteStep[];
  /** This level is an `if` block: its lines belong to the enclosing level's script. */
  rewriteIf?: boolean;
  rewriteLog?: boolean;
  uninitializedVariableWarn?: boolean;
  proxyHttpVersion?: '1.0' | '1.1';
  proxySetHeaders?: HeaderRule[];
  proxyConnectTimeout?: number;
  proxyReadTimeout?: number;
  proxySendTimeout?: number;
  proxyRedirect?: ProxyRedirect;
  proxyNextUpstream?: ReadonlySet<NextUpstreamCondition>;
  proxyNextUpstreamTries?: number;
  proxyNextUpstreamTimeout?: number;
  proxyBuffering?: boolean;
  proxyHideHeaders?: string[];
  proxyPassHeaders?: string[];
  proxyPassRequestHeaders?: boolean;
  proxyPassRequestBody?: boolean;
  proxyBufferSize?: number;
  /** null: `off` written at this level. */
  proxyCookieDomain?: CookieRewrite[] | null;
  proxyCookiePath?: CookieRewrite[] | null;
  proxyCookieFlags?: CookieFlagsRule[] | null;
  nativeTunnels?: NativeTunnelsMode;
  addHeaders?: AddHeaderRule[];
  accessLogs?: AccessLogDraft[];
  /** `access_log off` at this level (nginx: `off` anywhere at a level disables that level's logs). */
  accessLogOff?: boolean;
  errorLogs?: ErrorLogTarget[];
  keepaliveTimeout?: number;
  keepaliveHeader?: number;
  clientHeaderTimeout?: number;
  clientBodyTimeout?: number;
  sendTimeout?: number;
  clientMaxBodySize?: number;
  clientBodyBufferSize?: number;
  keepaliveRequests?: number;
  keepaliveTime?: number;
  keepaliveDisable?: ('msie6' | 'safari')[];
  clientHeaderBufferSize?: number;
  largeClientHeaderBuffers?: { number: number; size: number };
  limitRate?: number;
  limitRateAfter?: number;
  lingeringClose?: 'on' | 'off' | 'always';
  lingeringTime?: number;
  lingeringTimeout?: number;
  resetTimedoutConnection?: boolean;
  /** `auth_basic`: the realm, or null for `off`. */
  authBasicRealm?: string | null;
  authBasicUserFile?: string;
  realIpFrom?: Cidr[];
  realIpHeader?: string;
  realIpRecursive?: boolean;
  websocketOrigins?: OriginRule[];
  forwardProxy?: { on?: boolean; allow?: ForwardAllowRule[]; authRealm?: string | null; authUserFile?: string };
  websocketMaxMessage?: number;
  websocketMaxFrame?: number;
  websocketPingInterval?: number;
  websocketPingTimeout?: number;
  websocketMessageRate?: WebSocketMessageRate | null;
  charset?: string | null;
  resolver?: ResolverConfig;
  resolverTimeout?: number;
  charsetTypes?: string[];
  defaultType?: string;
  /** `ssl_*` directives written at this level (each inherited on its own). */
  ssl?: Partial<Mutable<SslSettings>>;
  http2?: boolean;
  /** `proxy_ssl_*` directives written at this level. */
  proxySsl?: Partial<Mutable<ProxySslSettings>>;
  /** `allow` / `deny` lines of this level, in order. */
  access?: AccessRule[];
  /** The status content handler written at this level, and which directive set it. */
  adminHandler?: { readonly handler: AdminHandler; readonly directive: string; readonly at: SourceLoc };
  /** `gzip_*` / `brotli_*` directives written at this level. */
  compression?: Partial<Mutable<CompressionSettings>>;
  /** `ssi_*` directives written at this level. */
  ssi?: Partial<Mutable<SsiSettings>>;
  /** Static-file directives written at this level (files.ts merges them). */
  files?: FilesDraft;
  /** The core flags written at this level (each inherited on its own). */
  core?: Partial<Mutable<CoreSettings>>;
  /** Body buffering directives written at this level (each inherited on its own). */
  buffering?: Partial<Mutable<BufferingSettings>>;
  /** `limit_conn*` / `limit_req*` written at this level (each inherited on its own). */
  limits?: Partial<Mutable<LimitSettings>>;
  /** `proxy_cache*` directives written at this level (each inherited on its own). */
  cache?: Partial<Mutable<CacheSettings>>;
  fastcgi?: Partial<Mutable<FastcgiSettings>>;
}

/** A `health_check` line; `host` comes from the location's proxy_pass once upstreams are linked. */
export type HealthCheckDraft = Omit<HealthCheckConfig, 'host'>;

export interface LocationDraft {
  readonly modifier: LocationModifier;
  /** The name nginx compares for nesting and duplicates (pattern without the modifier). */
  readonly pattern: string;
  readonly regex: RegExp | null;
  readonly locations: LocationDraft[];
  readonly settings: SettingsDraft;
  /** `health_check` lines of this location (not inherited, as in nginx Plus). */
  readonly healthChecks: HealthCheckDraft[];
  /** A proxy_pass line was written here, valid or not (so a bad one does not also fail health_check). */
  proxyPassWritten: boolean;
  readonly at: SourceLoc;
}

export interface ListenDraft {
  /** Address as written (for messages). */
  readonly text: string;
  /** IP address, or a host name still to be resolved. */
  readonly host: string;
  readonly port: number;
  readonly defaultServer: boolean;
  readonly ssl: boolean;
  readonly http2: boolean;
  readonly proxyProtocol: boolean;
  readonly socket?: ListenSocketOptions;
  readonly at: SourceLoc;
}

export interface ServerDraft {
  readonly listens: ListenDraft[];
  readonly names: ServerName[];
  primaryName: string | null;
  readonly locations: LocationDraft[];
  readonly settings: SettingsDraft;
  readonly at: SourceLoc;
}

export interface UpstreamServerDraft {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly maxFails: number;
  readonly failTimeout: number;
  readonly backup: boolean;
  readonly down: boolean;
  readonly maxConns: number;
  readonly slowStart: number;
  /** `resolve`: the host is resolved at run time, not at load. */
  readonly resolve: boolean;
  /** `server unix:/path`: the socket's path (host and port are then unused). */
  readonly unixPath?: string;
  /**
   * The parameters as written that only some balancing methods accept (`backup`, `slow_start=T`);
   * checked when the upstream block ends, since the method may come after the server lines.
   */
  readonly methodBound: readonly string[];
  readonly at: SourceLoc;
}

export interface UpstreamDraft {
  readonly name: string;
  readonly servers: UpstreamServerDraft[];
  /** `server` lines seen, valid or not (so a bad line does not also say "no servers"). */
  serverLines: number;
  keepalive: number;
  keepaliveTimeout: number;
  keepaliveRequests: number;
  /** The balancing method directive, or null for the default round-robin. */
  method: { readonly value: BalanceMethod; readonly directive: string; readonly at: SourceLoc } | null;
  sticky: StickyCookie | null;
  /** `websocket_rebalance` (rebalance.ts). */
  rebalance?: RebalanceConfig;
  stickyLearn?: StickyLearn;
  /** `zone NAME [SIZE]`: size 0 when not written here (it may be given by another upstream). */
  zone: { readonly name: string; readonly size: number; readonly at: SourceLoc } | null;
  /** `resolver` / `resolver_timeout` written in the block (nginx 1.27.3). */
  resolver?: ResolverConfig;
  resolverTimeout?: number;
  readonly at: SourceLoc;
}

export interface HttpDraft {
  readonly upstreams: UpstreamDraft[];
  /** `match` blocks by name (nginx Plus ngx_http_upstream_hc_module). */
  readonly matches: Map<string, MatchConfig>;
  readonly maps: MapConfig[];
  readonly logFormats: Map<string, LogFormat>;
  /** `proxy_cache_path` zones by name. */
  readonly cacheZones: Map<string, CacheZoneConfig>;
  readonly servers: ServerDraft[];
  readonly settings: SettingsDraft;
  /** `limit_conn_zone` / `limit_req_zone` lines by zone name. */
  readonly limitZones: Map<string, LimitZone>;
  /** Zones named by `limit_conn` / `limit_req`, checked once every zone line has been seen. */
  readonly limitRefs: { readonly zone: string; readonly kind: 'conn' | 'req'; readonly at: SourceLoc }[];
}

export interface MainDraft {
  workerProcesses?: number | 'auto';
  /** `user` (only recorded when running as root, as nginx). */
  user?: RunAs;
  process?: Partial<Mutable<ProcessSettings>>;
  pid?: string;
  /** ms */
  workerShutdownTimeout?: number;
  /** `websocket_drain_timeout` (http context, kept here since it applies to the whole runtime). */
  websocketDrain?: { timeout: number; jitter: number } | null;
  errorLogs?: ErrorLogTarget[];
  events: { workerConnections?: number; acceptMutex?: boolean } | null;
  fleet?: FleetConfig;
  /** A `fleet` line was written, valid or not (so a bad one does not also fail `least_conn fleet`). */
  fleetWritten?: boolean;
  http: HttpDraft | null;
}

/** `sif` / `lif`: inside an `if` block in a server / in a location (nginx's NGX_HTTP_SIF_CONF / _LIF_CONF). */
export type Context = 'main' | 'events' | 'http' | 'server' | 'location' | 'upstream' | 'sif' | 'lif';

/** Where the walker is: the context plus the drafts of every enclosing block. */
export interface Scope {
  readonly context: Context;
  readonly main: MainDraft;
  readonly http: HttpDraft | null;
  readonly server: ServerDraft | null;
  /** The innermost enclosing location. */
  readonly location: LocationDraft | null;
  readonly upstream: UpstreamDraft | null;
  /** The settings of the innermost http, server or location block. */
  readonly settings: SettingsDraft | null;
}
