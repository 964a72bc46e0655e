import type { Socket } from 'node:net';
import type { LocationConfig, Settings } from '../../config/types.js';
import type { ErrorLog } from '../../observability/error-log.js';
import type { ProxyStats } from '../../observability/stats-collector.js';
import type { ListenerRoutes } from '../../routing/router.js';
import type { ConnInfo, RequestContext } from '../context/request-context.js';
import type { ProxyRoute } from './proxy-route.js';
import type { ProxyTunnel, TunnelHost } from '../tunnel/tunnel.js';
import type { Variables } from '../context/variables.js';
import type { TunnelKeep } from '../context/tunnel-keep.js';
import type { DynamicUpstreams } from '../../upstream/dynamic-upstreams.js';
import type { UpstreamPool } from '../../upstream/pool.js';
import type { StickySessions } from '../../upstream/sticky-learn.js';
import type { LimitZones } from '../../limits/limit-zones.js';
import type { CacheZone } from '../cache/cache-zone.js';

/** What the request handlers need from the runtime that owns them (one config generation). */
export interface ProxyRuntime {
  readonly vars: Variables;
  /** The statistics of the proxy (status handlers read them), null outside a ProxyServer. */
  readonly stats: ProxyStats | null;
  proxyRoute(location: LocationConfig): ProxyRoute;
  /** Upstream groups by name, and the upstreams found at run time (proxy_pass with variables). */
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly dynamic: DynamicUpstreams;
  /** `proxy_cache_path` zones by keys_zone name (one per process, kept across reloads). */
  readonly cacheZones: ReadonlyMap<string, CacheZone>;
  errorLog(settings: Settings | null): ErrorLog;
  /** Logs the request (access_log) and publishes its end event. Called exactly once. */
  finish(ctx: RequestContext): void;
  connInfo(socket: Socket): ConnInfo;
  routesFor(socket: Socket): ListenerRoutes;
  /** Counts the tunnels the native addon holds (the connection registry). */
  readonly tunnelHost: TunnelHost;
  /**
   * What a tunnel of a location with `settings` keeps of its request context for its end (its
   * access-log variables; everything while the end events have subscribers).
   */
  tunnelKeep(settings: Settings | null): TunnelKeep;
  tunnelOpened(tunnel: ProxyTunnel): void;
  tunnelClosed(tunnel: ProxyTunnel): void;
  /** The limit_conn / limit_req zones of this generation and their store (src/limits/). */
  readonly limitZones: LimitZones;
  /** `sticky learn` session tables (kept across reloads, in Redis with `fleet`). */
  readonly stickySessions: StickySessions;
}
