import type { Socket } from 'node:net';
import type { AccessLogTarget, Config, ErrorLogTarget, LocationConfig, Settings } from '../config/types.js';
import { defaultSettings } from '../config/defaults.js';
import { AccessLog } from '../observability/access-log.js';
import { ErrorLog } from '../observability/error-log.js';
import { events } from '../observability/events.js';
import type { LogFiles } from '../observability/log-files.js';
import type { ProxyStats } from '../observability/stats-collector.js';
import type { ProxyRoute } from '../proxy/session/proxy-route.js';
import { compileProxyRoute } from '../proxy/session/proxy-route.js';
import type { ProxyRuntime } from '../proxy/session/proxy-runtime.js';
import type { ConnInfo, RequestContext } from '../proxy/context/request-context.js';
import { Variables } from '../proxy/context/variables.js';
import { logContext } from '../proxy/context/log-context.js';
import { KEEP_ALL, tunnelKeep } from '../proxy/context/tunnel-keep.js';
import type { TunnelKeep } from '../proxy/context/tunnel-keep.js';
import type { ProxyTunnel, TunnelHost } from '../proxy/tunnel/tunnel.js';
import { groupServers } from '../routing/router.js';
import type { ListenerRoutes } from '../routing/router.js';
import { ActiveHealthChecks } from '../upstream/health/active-checks.js';
import { DynamicUpstreams } from '../upstream/dynamic-upstreams.js';
import { cacheZone } from '../proxy/cache/cache-zone.js';
import type { CacheZone } from '../proxy/cache/cache-zone.js';
import { UpstreamPool } from '../upstream/pool.js';
import type { PeerStates } from '../upstream/pool.js';
import type { ConnectionRegistry } from './connections.js';
import { LimitZones } from '../limits/limit-zones.js';
import type { LimitStore } from '../limits/limit-store.js';
import type { FleetMember } from '../fleet/fleet-member.js';
import { MemoryLimitStore } from '../limits/memory-store.js';
import { StickySessions } from '../upstream/sticky-learn.js';

/**
 * ngx_http_rewrite_var: a `set` variable read before any `set` gave it a value is empty, with a
 * warning unless `uninitialized_variable_warn off` applies where it is read.
 */
function uninitializedWarning(rt: Runtime, name: string, ctx: RequestContext): void {
  if (ctx.settings !== null && !ctx.settings.rewrite.uninitializedWarn) return;
  rt.errorLog(ctx.settings).log('warn', `using uninitialized "${name}" variable${logContext(ctx)}`, ctx.conn.id);
}

/**
 * One config generation, built completely before it serves anything: variables, upstream pools,
 * compiled routes per listen address, logs. Requests hold the runtime they started with.
 */
export class Runtime implements ProxyRuntime {
  readonly config: Config;
  readonly vars: Variables;
  readonly pools = new Map<string, UpstreamPool>();
  /** Routes by listen key ("127.0.0.1:8080"). */
  readonly routes: Map<string, ListenerRoutes>;
  readonly mainLog: ErrorLog;
  readonly #files: LogFiles;
  readonly #accessLog: AccessLog;
  readonly #registry: ConnectionRegistry;
  readonly #proxyRoutes = new Map<LocationConfig, ProxyRoute>();
  readonly #errorLogs = new Map<readonly ErrorLogTarget[], ErrorLog>();
  /** What a tunnel keeps for its end, by the access-log targets of its location. */
  readonly #tunnelKeeps = new WeakMap<readonly AccessLogTarget[], TunnelKeep>();
  readonly #healthChecks: ActiveHealthChecks[] = [];
  readonly dynamic: DynamicUpstreams;
  readonly cacheZones = new Map<string, CacheZone>();
  readonly #noPool: UpstreamPool;

  readonly limitZones: LimitZones;
  /** This process as a fleet member (`fleet`), set by the proxy; null without a fleet. */
  fleet: FleetMember | null = null;

  readonly stickySessions: StickySessions;

  constructor(config: Config, files: LogFiles, states: PeerStates, registry: ConnectionRegistry, limitStore: LimitStore = new MemoryLimitStore(), stickySessions = new StickySessions()) {
    this.stickySessions = stickySessions;
    this.config = config;
    this.limitZones = new LimitZones(config.http?.limitZones ?? new Map(), limitStore);
    this.#files = files;
    this.#registry = registry;
    const http = config.http;
    this.vars = new Variables(http?.maps ?? [], http?.setVariables ?? [], () => registry.stats?.connections() ?? null);
    this.vars.onUninitialized = uninitializedWarning.bind(null, this);
    this.mainLog = new ErrorLog(config.errorLogs, files);
    this.#errorLogs.set(config.errorLogs, this.mainLog);
    for (const [name, u] of http?.upstreams ?? []) this.pools.set(name, new UpstreamPool(u, states));
    this.dynamic = new DynamicUpstreams(states);
    for (const [name, z] of http?.cacheZones ?? []) this.cacheZones.set(name, cacheZone(z));
    this.#noPool = this.dynamic.poolFor('', [], 0);
    this.routes = new Map([...groupServers(http?.servers ?? [], this)].map(([k, v]) => [k, v.routes]));
    this.#accessLog = new AccessLog(http?.logFormats ?? new Map(), files, this.vars);
    for (const s of http?.servers ?? []) this.#compileLocations(s.locations);
    const healthLog = http ? this.errorLog(http.settings) : this.mainLog;
    for (const pool of this.pools.values()) {
      if (pool.config.healthChecks.length > 0) this.#healthChecks.push(new ActiveHealthChecks(pool, http?.matches ?? new Map(), healthLog));
    }
  }

  /** Starts what runs on its own (active health checks) once the runtime serves traffic. */
  start(): void {
    for (const h of this.#healthChecks) h.start();
    const log = this.config.http ? this.errorLog(this.config.http.settings) : this.mainLog;
    for (const pool of this.pools.values()) {
      if (pool.resolving.length > 0) this.dynamic.follow(pool, log, this.#drainRemoved);
    }
  }

  /**
   * Tunnels to addresses a `server ... resolve` name no longer resolves to go away after
   * websocket_drain_timeout, as tunnels to servers a reload removed do (never, with the default
   * `off`); a tunnel whose address came back by then stays.
   */
  readonly #drainRemoved = (pool: UpstreamPool, addrs: readonly string[]): void => {
    const drain = this.config.websocketDrain;
    if (drain === null) return;
    const gone = new Set(addrs);
    for (const t of this.#registry.tunnels) {
      const addr = t.ctx.attempts.at(-1)?.addr ?? '';
      if (t.ctx.proxyPass?.upstream !== pool.name || !gone.has(addr)) continue;
      const timer = setTimeout(() => {
        if (!pool.peers.some((p) => p.addr === addr)) t.goAway('drained: address no longer resolved');
      }, drain.timeout + Math.floor(Math.random() * drain.jitter));
      timer.unref();
    }
  };

  /** Every location of the tree; a loop, not recursion, since nesting may be thousands deep. */
  #compileLocations(locations: readonly LocationConfig[]): void {
    const pending = [...locations];
    for (let l = pending.pop(); l !== undefined; l = pending.pop()) {
      const pass = l.settings.proxyPass;
      if (pass?.variable !== undefined) {
        // The pool is found per request (variable-target.ts); none until then.
        this.#proxyRoutes.set(l, compileProxyRoute(l, this.#noPool));
      } else if (pass) {
        const pool = this.pools.get(pass.upstream);
        if (!pool) throw new Error(`internal: upstream "${pass.upstream}" missing from the resolved config`);
        this.#proxyRoutes.set(l, compileProxyRoute(l, pool));
      }
      for (const c of l.locations) pending.push(c);
    }
  }

  /**
   * client_header_timeout for connections to a listen key: nginx reads the head before it knows
   * the virtual server, so the default server of the address decides.
   */
  clientHeaderTimeout(listenKey: string): number {
    return this.defaultSettings(listenKey).clientHeaderTimeout;
  }

  /** The settings that count before a request names its server: the address's default server's. */
  defaultSettings(listenKey: string): Settings {
    const routes = this.routes.get(listenKey);
    return routes?.group.defaultServer.settings ?? this.config.http?.settings ?? defaultSettings([], this.config.prefix);
  }

  proxyRoute(location: LocationConfig): ProxyRoute {
    return this.#proxyRoutes.get(location) as ProxyRoute;
  }

  errorLog(settings: Settings | null): ErrorLog {
    if (!settings) return this.mainLog;
    let log = this.#errorLogs.get(settings.errorLogs);
    if (!log) {
      log = new ErrorLog(settings.errorLogs, this.#files);
      this.#errorLogs.set(settings.errorLogs, log);
    }
    return log;
  }

  finish(ctx: RequestContext): void {
    if (ctx.endMs === 0) ctx.endMs = performance.now();
    // ngx_http_limit_conn_cleanup runs with the request's pool: a tunnel counts until it closes.
    ctx.limits?.end();
    const targets = ctx.settings?.accessLogs;
    if (targets && targets.length > 0) this.#accessLog.write(ctx, targets, this.vars, this.errorLog(ctx.settings));
    this.#registry.stats?.requestEnded(ctx);
    if (events.requestEnd.hasSubscribers) events.requestEnd.publish({ ctx });
    // Temp files live as long as their request (nginx's cleanup handler for them).
    ctx.requestBody?.dispose();
  }

  tunnelKeep(settings: Settings | null): TunnelKeep {
    // A subscriber to the end events may read anything of the context when the tunnel ends.
    if (events.requestEnd.hasSubscribers || events.tunnelClose.hasSubscribers) return KEEP_ALL;
    const targets = settings?.accessLogs ?? [];
    let keep = this.#tunnelKeeps.get(targets);
    if (keep === undefined) {
      keep = tunnelKeep(this.#accessLog.variablesOf(targets), (name) => this.vars.readsOtherVariables(name));
      this.#tunnelKeeps.set(targets, keep);
    }
    return keep;
  }

  get stats(): ProxyStats | null {
    return this.#registry.stats;
  }

  connInfo(socket: Socket): ConnInfo {
    return this.#registry.info(socket);
  }

  routesFor(socket: Socket): ListenerRoutes {
    return this.#registry.routesFor(socket, this.routes);
  }

  get tunnelHost(): TunnelHost {
    return this.#registry;
  }

  tunnelOpened(tunnel: ProxyTunnel): void {
    this.#registry.tunnels.add(tunnel);
    if (events.tunnelOpen.hasSubscribers) {
      events.tunnelOpen.publish({ ctx: tunnel.ctx, upstream: tunnel.ctx.proxyPass?.upstream, server: tunnel.ctx.attempts.at(-1)?.addr });
    }
  }

  tunnelClosed(tunnel: ProxyTunnel): void {
    this.#registry.tunnels.delete(tunnel);
    this.#registry.stats?.tunnelClosed(tunnel.ctx, tunnel.reason);
    if (events.tunnelClose.hasSubscribers) {
      events.tunnelClose.publish({ ctx: tunnel.ctx, upstream: tunnel.ctx.proxyPass?.upstream, server: tunnel.ctx.attempts.at(-1)?.addr, reason: tunnel.reason });
    }
  }

  /**
   * After a reload: stops what this generation runs on its own and frees its idle upstream
   * connections; requests and tunnels still using it finish normally.
   */
  retire(): void {
    for (const h of this.#healthChecks) h.close();
    this.dynamic.retire();
    for (const p of this.pools.values()) p.closeIdle();
  }

  close(): void {
    for (const z of this.cacheZones.values()) z.close();
    for (const h of this.#healthChecks) h.close();
    this.dynamic.close();
    for (const p of this.pools.values()) p.close();
  }
}
