/**
 * Defaults of the control plane, in one table (units: ms for durations). They are nginx's
 * documented defaults unless docs/configuration.md says otherwise.
 */
import { compressionDefaults } from './directives/gzip.js';
import { ssiDefaults } from './directives/ssi.js';
import { fileDefaults } from './files.js';
import { CORE_DEFAULTS } from './core-settings.js';
import { bufferingDefaults } from './buffering.js';
import { LIMIT_DEFAULTS } from './directives/limits.js';
import { CACHE_DEFAULTS } from './cache-settings.js';
import { fastcgiDefaults } from './directives/fastcgi.js';
import { PROXY_SSL_DEFAULTS, SSL_DEFAULTS } from './tls.js';
import type { ErrorLogTarget, ListenSocketOptions, NextUpstreamCondition, ProcessSettings, Settings } from './types.js';

export const MAIN_DEFAULTS = {
  workerProcesses: 1,
  workerConnections: 512,
  /**
   * Off, as nginx (since 1.11.3): every worker accepts for itself, a third of the primary's round
   * robin's CPU per handshake, and the workers' shared load table spreads a burst of long-lived
   * connections (docs/benchmarks.md, "accept_mutex off: workers weigh their loads").
   */
  acceptMutex: false,
  /** nginx waits without limit; Sluice gives open tunnels 10 s on a graceful stop. */
  workerShutdownTimeout: 10_000,
  /** jitter of websocket_drain_timeout when only the timeout is given */
  websocketDrainJitter: 5_000,
  /** Sluice stays in the foreground unless `daemon on` (nginx's default is on). */
  process: { daemon: false, rlimitNofile: null, cpuAffinity: null, env: [] } as ProcessSettings,
  /**
   * The pid file when `pid` is not set, relative to the prefix (nginx's compiled-in
   * `logs/nginx.pid`). Sluice's prefix is the config file's directory, which has no `logs/`, and
   * Sluice creates no directory: so the file sits in the prefix itself, and `sluice -s` works on
   * any config.
   */
  pidFile: 'sluice.pid',
  /** nginx logs to logs/error.log; Sluice logs to stderr unless error_log says otherwise. */
  errorLogs: [{ path: 'stderr', level: 'error' }] as readonly ErrorLogTarget[],
} as const;

/** A server without `listen` listens here (nginx: `*:80`). */
export const DEFAULT_LISTEN = { host: '0.0.0.0', port: 80 } as const;

/** nginx's lingering_close, lingering_time and lingering_timeout defaults. */
export const LINGERING_DEFAULTS = { lingeringClose: 'on', lingeringTime: 30_000, lingeringTimeout: 5_000 } as const;

/** nginx's defaults for the socket parameters of `listen` (ipv6only=on, backlog=511). */
export const LISTEN_SOCKET_DEFAULTS: ListenSocketOptions = { ipv6only: true, backlog: 511, bind: false, reuseport: false, keepalive: null };

/** The http-level settings before any directive, given the main-level error logs and the prefix (`root html`). */
export function defaultSettings(errorLogs: readonly ErrorLogTarget[], prefix: string): Settings {
  return {
    proxyPass: null,
    rewrite: { script: null, log: false, uninitializedWarn: true },
    proxyHttpVersion: '1.0',
    proxySetHeaders: [],
    proxyConnectTimeout: 60_000,
    proxyReadTimeout: 60_000,
    proxySendTimeout: 60_000,
    proxyRedirect: { mode: 'default' },
    proxyNextUpstream: new Set<NextUpstreamCondition>(['error', 'timeout']),
    proxyNextUpstreamTries: 0,
    proxyNextUpstreamTimeout: 0,
    proxyBuffering: true,
    proxyHideHeaders: [],
    proxyPassHeaders: [],
    proxyPassRequestHeaders: true,
    proxyPassRequestBody: true,
    // One memory page, as nginx on x86-64 Linux.
    proxyBufferSize: 4096,
    proxyCookieDomain: [],
    proxyCookiePath: [],
    proxyCookieFlags: [],
    nativeTunnels: 'auto',
    addHeaders: [],
    // nginx writes logs/access.log by default; Sluice writes no access log unless configured.
    accessLogs: [],
    errorLogs,
    keepaliveTimeout: 75_000,
    keepaliveHeader: 0,
    clientHeaderTimeout: 60_000,
    clientBodyTimeout: 60_000,
    sendTimeout: 60_000,
    clientMaxBodySize: 1024 * 1024,
    clientBodyBufferSize: 16 * 1024,
    keepaliveRequests: 1000,
    keepaliveTime: 3_600_000,
    keepaliveDisable: ['msie6'],
    clientHeaderBufferSize: 1024,
    largeClientHeaderBuffers: { number: 4, size: 8 * 1024 },
    limitRate: 0,
    limitRateAfter: 0,
    ...LINGERING_DEFAULTS,
    resetTimedoutConnection: false,
    authBasicRealm: null,
    authBasicUserFile: null,
    realIpFrom: [],
    realIpHeader: 'x-real-ip',
    realIpRecursive: false,
    websocketOrigins: null,
    forwardProxy: { on: false, allow: [], authRealm: null, authUserFile: null },
    websocketMaxMessage: 0,
    websocketMaxFrame: 0,
    websocketPingInterval: 0,
    websocketPingTimeout: 0,
    websocketMessageRate: null,
    charset: null,
    resolver: null,
    resolverTimeout: 30_000,
    // nginx's default charset_types (ngx_http_charset_default_types).
    charsetTypes: ['text/html', 'text/xml', 'text/plain', 'text/vnd.wap.wml', 'application/javascript', 'application/rss+xml'],
    defaultType: 'text/plain',
    ssl: SSL_DEFAULTS,
    http2: false,
    proxySsl: PROXY_SSL_DEFAULTS,
    access: [],
    adminHandler: null,
    compression: compressionDefaults(),
    ssi: ssiDefaults(),
    files: fileDefaults(prefix),
    core: CORE_DEFAULTS,
    buffering: bufferingDefaults(prefix),
    limits: LIMIT_DEFAULTS,
    cache: CACHE_DEFAULTS,
    fastcgi: fastcgiDefaults(prefix),
  };
}
