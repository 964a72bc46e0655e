import { ProxyError } from '../core/errors.js';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config/types.js';
import { LogFiles } from '../observability/log-files.js';
import type { LogSink } from '../observability/log-files.js';
import { h1Answer, handleHttpRequest, handleLeanRequest } from '../proxy/front/h1-request.js';
import { failRequest } from '../proxy/session/guard.js';
import { errorResponse, sendLocalRaw } from '../proxy/answer/respond.js';
import { handleUpgrade, rawAnswer } from '../proxy/front/h1-upgrade.js';
import { handleConnect } from '../proxy/forward/connect-method.js';
import { handleForwardRequest, handleForwardUpgrade } from '../proxy/forward/absolute-form.js';
import { forwardServer, isAbsoluteForm } from '../proxy/forward/raw-forward.js';
import { PeerStates } from '../upstream/pool.js';
import { upstreamClientReady } from '../proxy/client/registry.js';
import type { LimitStore } from '../limits/limit-store.js';
import { MemoryLimitStore } from '../limits/memory-store.js';
import { FleetLimitStore } from '../limits/fleet-store.js';
import { StickySessions } from '../upstream/sticky-learn.js';
import { refuseForClientCert, refuseUpgradeForClientCert } from '../proxy/front/tls-refusals.js';
import { applySocketOptions, bindError, listenOn, planBinds } from './binds.js';
import type { BindPlan } from './binds.js';
import { ProxyStats } from '../observability/stats-collector.js';
import { ConnectionRegistry } from './connections.js';
import { Runtime } from './runtime.js';
import { Rebalancer } from './rebalancer.js';
import type { TunnelCountSource } from '../upstream/rebalance/tunnel-counts.js';
import { listenTls } from './tls-listener.js';
import type { TlsFrontend, TlsProcess } from './tls-listener.js';
import { OcspStapler } from './ocsp-stapler.js';
import { TlsSessionCaches } from './tls-session-cache.js';
import type { SessionSync } from './tls-session-cache.js';
import { timerDelay } from '../core/timers.js';
import { monotonicNow } from '../core/clock.js';
import { events } from '../observability/events.js';
import { HEADER_CHECK_INTERVAL_MS, headerTimeoutLog, onHttpSocketTimeout, resetConnection } from '../proxy/front/client-timeouts.js';
import { acceptBareLf } from '../proxy/front/bare-lf.js';
import { isClosing, parseErrorRefusal } from '../proxy/front/h1-head-checks.js';
import type { ProxyTunnel } from '../proxy/tunnel/tunnel.js';
import { GOING_AWAY_GRACE_MS } from '../proxy/tunnel/tunnel.js';
import { keptServers, orphanedTunnels } from './orphans.js';
import { LeanFront, leanFrontEnabled } from './lean-front.js';
import { acceptInAddon, acceptLoadChanged, heldByAddon, reconfigureAccept } from './native-accept.js';
import { takeAccepted } from './native-client.js';
import type { LeanHead, UpgradeRequest } from '../proxy/front/h1-head-parser.js';
import type { LeanResponse } from '../proxy/front/h1-lean-response.js';
import type { DrainImpact } from './orphans.js';
import type { FleetConfig } from '../config/types.js';
import { FleetMember } from '../fleet/fleet-member.js';
import type { MemberFigures } from '../fleet/fleet-member.js';
import { FleetTunnelCounts } from '../fleet/fleet-tunnel-counts.js';
import { peerAvailability } from '../upstream/peer.js';
import type { PeerState } from '../upstream/peer.js';

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A listen key as configured, and the port it is bound to (differs for port 0). */
export interface ListenerInfo {
  readonly key: string;
  readonly host: string;
  readonly port: number;
}

export interface ProxyServerOptions {
  /** Receives what would go to stderr (the error log's default target). */
  readonly logger?: LogSink | undefined;
  /** Signs sticky cookie ids; worker processes share one so that each honours the others' cookies. */
  readonly stickySecret?: Buffer | undefined;
  /** Tells the other worker processes about sessions stored in a shared `ssl_session_cache`. */
  readonly sessionSync?: SessionSync | undefined;
  /** Where limit zones are counted; default: this process's memory (a worker asks its primary). */
  readonly limitStore?: LimitStore | undefined;
  /** Where websocket_rebalance gets its tunnel counts; default: this process's own tunnels. */
  readonly tunnelCounts?: TunnelCountSource | undefined;
}

/** What a reload did. */
export interface ReloadResult {
  /** Listen sockets opened and closed (bind keys). */
  readonly opened: readonly string[];
  readonly closed: readonly string[];
  /** Open tunnels whose upstream server is gone from the new config. */
  readonly drained: number;
}

interface Bound {
  plan: BindPlan;
  readonly server: Server;
  /** For a bind with ssl addresses: the socket that listens, sniffs and decrypts for `server`. */
  readonly front?: TlsFrontend;
  /** The lean HTTP/1.1 front end that sees each connection's first packet (null: Node's server reads all). */
  readonly lean: LeanFront | null;
}

/** large_client_header_buffers NUMBER x SIZE bounds a whole head: the largest of a bind's keys. */
function maxHeaderSizeOf(runtime: Runtime, plan: BindPlan): number {
  return Math.max(...plan.listenKeys.map((k) => {
    const b = runtime.defaultSettings(k).largeClientHeaderBuffers;
    return b.number * b.size;
  }));
}

/** One Node HTTP server serves every listen key of a bind: the longest header timeout of them. */
function headerTimeoutOf(runtime: Runtime, plan: BindPlan): number {
  return timerDelay(Math.max(...plan.listenKeys.map((k) => runtime.clientHeaderTimeout(k))));
}

/**
 * A running proxy: its listening sockets, its connections and the current runtime (one config
 * generation). Start, close (graceful) and destroy (abortive); close and destroy are idempotent.
 */
/** The request being read on this connection has no answer out yet (Node's current response). */
function answerPending(socket: Socket): boolean {
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  return res != null && !res.headersSent;
}

/** A reload asked of a proxy that is shutting down: nothing to apply and nothing to report (nginx ignores it too). */
export class ShuttingDownError extends Error {
  constructor() {
    super('the proxy is shutting down');
  }
}

export class ProxyServer {
  runtime: Runtime;
  readonly registry: ConnectionRegistry;
  /** The live statistics (also reachable from the registry, where the data plane counts into them). */
  readonly stats: ProxyStats;
  readonly files: LogFiles;
  readonly states: PeerStates;
  /** limit_conn / limit_req zones: they outlive reloads, as nginx's shared memory zones. */
  readonly limitStore: LimitStore;
  /** The same store, its `fleet` zones counted in the fleet's Redis. */
  readonly fleetLimits: FleetLimitStore;
  /** `sticky learn` session tables: they outlive reloads (in the fleet's Redis with `fleet`). */
  readonly stickySessions = new StickySessions(() => this.fleet);
  /** TLS session caches and OCSP staples: they outlive reloads. */
  readonly tls: TlsProcess;
  /** websocket_rebalance: one per proxy, across reloads. */
  readonly rebalancer: Rebalancer;
  readonly #bound: Bound[] = [];
  #closing: Promise<void> | null = null;
  /** This process as a member of the `fleet` (outlives reloads; null without `fleet`). */
  fleet: FleetMember | null = null;
  /** websocket_rebalance's counts: the fleet's sums while there is one, else this process's. */
  readonly #fleetTunnels: FleetTunnelCounts;

  private constructor(config: Config, opts: ProxyServerOptions) {
    this.states = new PeerStates(opts.stickySecret);
    this.files = new LogFiles({ stderr: opts.logger });
    this.registry = new ConnectionRegistry(config.workerConnections);
    this.fleetLimits = new FleetLimitStore(opts.limitStore ?? new MemoryLimitStore(), () => this.fleet, () => this.runtime.mainLog);
    this.limitStore = this.fleetLimits;
    this.runtime = new Runtime(config, this.files, this.states, this.registry, this.limitStore, this.stickySessions);
    this.stats = new ProxyStats(this.registry, () => this.runtime, this);
    this.registry.stats = this.stats;
    this.#fleetTunnels = new FleetTunnelCounts(() => this.fleet);
    this.rebalancer = new Rebalancer(this.registry, () => this.runtime, opts.tunnelCounts ?? this.#fleetTunnels);
    this.tls = { sessions: new TlsSessionCaches(opts.sessionSync ?? null), stapler: new OcspStapler(() => this.runtime.mainLog) };
  }

  static async start(config: Config, opts: ProxyServerOptions = {}): Promise<ProxyServer> {
    // A client that loads a package (SLUICE_UPSTREAM_CLIENT=undici) fails the start, not a request.
    await upstreamClientReady();
    const proxy = new ProxyServer(config, opts);
    const listens = (config.http?.servers ?? []).flatMap((s) => s.listens);
    try {
      for (const plan of planBinds(listens)) proxy.#bound.push(await proxy.#listen(plan));
      await proxy.#setFleet(config.fleet);
      proxy.runtime.start();
      proxy.rebalancer.start();
      proxy.tls.stapler.prefetch(config);
    } catch (err) {
      proxy.destroy();
      throw err;
    }
    return proxy;
  }

  get listeners(): ListenerInfo[] {
    const out: ListenerInfo[] = [];
    for (const b of this.#bound) {
      const addr = (b.front ?? b.server).address();
      const port = addr && typeof addr === 'object' ? addr.port : b.plan.port;
      for (const key of b.plan.listenKeys) {
        const host = key.startsWith('[') ? key.slice(1, key.indexOf(']')) : key.slice(0, key.lastIndexOf(':'));
        out.push({ key, host, port });
      }
    }
    return out;
  }

  #listen(plan: BindPlan, runtime: Runtime = this.runtime): Promise<Bound> {
    const server = createServer({
      requestTimeout: 0,
      // client_header_timeout, looked for every HEADER_CHECK_INTERVAL_MS (Node: every 30 s).
      headersTimeout: headerTimeoutOf(runtime, plan),
      maxHeaderSize: maxHeaderSizeOf(runtime, plan),
      connectionsCheckingInterval: HEADER_CHECK_INTERVAL_MS,
      // keepalive_timeout is Sluice's own timer (client-timeouts.ts); Node's would also send
      // `Keep-Alive: timeout=N` on every response.
      keepAliveTimeout: 0,
      // The router answers a missing or invalid Host with nginx's 400 page.
      requireHostHeader: false,
      noDelay: true,
    });
    const bindInfo = { key: plan.key, configuredPort: plan.port, tls: false };
    const tlsBindInfo = { ...bindInfo, tls: true };
    // Node's parser of each connection it reads gets the bare-LF leniency; with the lean front
    // end, only connections it hands to Node's server get a Node parser at all.
    const onUpgrade = (req: UpgradeRequest, socket: Socket, head: Buffer): void => {
      if (this.registry.rejected.has(socket)) {
        socket.destroy();
        return;
      }
      const rt = this.runtime;
      const sentBefore = socket.bytesWritten;
      try {
        if ('encrypted' in socket && refuseUpgradeForClientCert(rt, req, socket)) return;
        const forward = isAbsoluteForm(req.url) ? forwardServer(rt, socket) : null;
        if (forward !== null) handleForwardUpgrade(rt, req, socket, head, forward);
        else handleUpgrade(rt, req, socket, head);
      } catch (err) {
        failRequest(rt, null, rawAnswer(socket, sentBefore), err);
      }
    };
    // A plain request the lean front end took (origin form: never for the forward proxy); its
    // response has what the client-certificate refusals use of a ServerResponse (sendLocal).
    const onLeanRequest = (req: LeanHead, res: LeanResponse, pipelined: boolean): void => {
      if (this.registry.rejected.has(req.socket)) {
        res.destroy();
        return;
      }
      const rt = this.runtime;
      try {
        if ('encrypted' in req.socket && refuseForClientCert(rt, req as unknown as IncomingMessage, res as unknown as ServerResponse)) return;
        handleLeanRequest(rt, req, res, pipelined);
      } catch (err) {
        failRequest(rt, null, h1Answer(res as unknown as ServerResponse), err);
      }
    };
    const lean = leanFrontEnabled() ? LeanFront.take(server, (socket) => acceptBareLf(server, socket), onUpgrade, onLeanRequest) : null;
    if (lean === null) server.on('connection', (socket: Socket) => acceptBareLf(server, socket));
    const register = (socket: Socket): boolean => {
      // A TLS socket's TCP connection was set up by the TLS front end (tls-listener.ts).
      if (!('encrypted' in socket)) applySocketOptions(socket, plan.socket);
      if (!this.registry.accept(socket, 'encrypted' in socket ? tlsBindInfo : bindInfo)) {
        const refusal = new ProxyError('TOO_MANY_CONNECTIONS');
        this.runtime.mainLog.log('alert', `${this.registry.cap} ${refusal.message}`);
        sendLocalRaw(socket, errorResponse(refusal.status, null, null, null), null);
        return false;
      }
      return true;
    };
    server.prependListener('connection', register);
    // The handlers guard each request themselves; these catch what fails before a request has
    // its context (the safety net, src/proxy/guard.ts).
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      if (this.registry.rejected.has(req.socket)) return;
      const rt = this.runtime;
      try {
        if ('encrypted' in req.socket && refuseForClientCert(rt, req, res)) return;
        const forward = isAbsoluteForm(req.url) ? forwardServer(rt, req.socket) : null;
        if (forward !== null) handleForwardRequest(rt, req, res, forward);
        else handleHttpRequest(rt, req, res);
      } catch (err) {
        failRequest(rt, null, h1Answer(res), err);
      }
    };
    server.on('request', onRequest);
    // nginx sends "100 Continue" only when it starts reading the body (a 413 or an error page
    // goes out without one), and ignores other expectations where Node would answer 417.
    server.on('checkContinue', onRequest);
    server.on('checkExpectation', onRequest);
    server.on('upgrade', onUpgrade);
    server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.registry.rejected.has(socket)) {
        socket.destroy();
        return;
      }
      const rt = this.runtime;
      // CONNECT is for forward proxies; nginx, which is none, answers it with 400.
      const forward = forwardServer(rt, socket);
      if (forward === null) {
        sendLocalRaw(socket, errorResponse(400, null, null, null), null);
        return;
      }
      const sentBefore = socket.bytesWritten;
      try {
        handleConnect(rt, req, socket, head, forward);
      } catch (err) {
        failRequest(rt, null, rawAnswer(socket, sentBefore), err);
      }
    });
    server.on('timeout', onHttpSocketTimeout);
    server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
      // A response already announced the end of this connection: what llhttp choked on after it
      // is not answered (the connection closes once that response is out).
      // A request whose body llhttp refused (a bad chunk) before its answer started is still
      // answered: 400, as without Connection: close.
      if (isClosing(socket) && !answerPending(socket)) return;
      // llhttp refuses bytes pipelined after a request that ends the connection (`Connection:
      // close`, HTTP/1.0 without keep-alive) while that request may still wait for its answer:
      // nginx answers it and reads nothing more, so nothing here either (no 400 in its place);
      // Node closes the connection once that answer is out.
      if (err.code === 'HPE_CLOSED_CONNECTION') return;
      if (err.code === 'ECONNRESET' || !socket.writable || this.registry.rejected.has(socket)) {
        socket.destroy();
        return;
      }
      const where = `, client: ${socket.remoteAddress ?? ''}, server: ${plan.key}`;
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        // client_header_timeout: nginx closes without an answer (ngx_http_read_request_header).
        this.runtime.mainLog.log('info', `${headerTimeoutLog(socket, this.registry.readMark(socket))}${where}`);
        if (plan.listenKeys.some((k) => this.runtime.defaultSettings(k).resetTimedoutConnection)) resetConnection(socket);
        else socket.destroy();
        return;
      }
      const refusal = parseErrorRefusal(err);
      this.runtime.mainLog.log('info', `${refusal?.log ?? `client sent invalid request (${err.code ?? err.message}) while reading client request headers`}${where}`);
      sendLocalRaw(socket, errorResponse(refusal?.status ?? 400, null, null, null), null);
    });
    // The TLS front end also reads PROXY protocol headers, for plain addresses too.
    if (plan.tls || plan.proxyProtocolKeys.size > 0) return listenTls(plan, server, { runtime: () => this.runtime, registry: this.registry, tls: this.tls }).then((front) => ({ plan, server, front, lean }));
    return new Promise<Bound>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(bindError(plan.key, err));
      server.once('error', onError);
      listenOn(server, plan, () => {
        server.removeListener('error', onError);
        // The relay's thread accepts for a plain address the lean front end reads (native-accept.ts).
        if (lean !== null) {
          const target = { server, registry: this.registry, register, onUpgrade, closing: () => this.#closing !== null };
          if (acceptInAddon(server, (c) => takeAccepted(target, c), this.#load)) {
            this.registry.addonHeld = () => this.#addonHeld();
            this.registry.released = acceptLoadChanged;
          }
        }
        server.on('error', (err) => this.runtime.mainLog.log('crit', `listener ${plan.key}: ${err.message}`));
        resolve({ plan, server, lean });
      });
    });
  }

  /**
   * The connections this proxy holds, its load in the workers' shared table (the addon adds those
   * it accepted and has not handed over yet).
   */
  readonly #load = (): number => this.registry.inHand;

  /** The connections the addon reads for this proxy's listeners, [waiting, reading]. */
  #addonHeld(): readonly [number, number] {
    let waiting = 0;
    let reading = 0;
    for (const b of this.#bound) {
      const [w, r] = heldByAddon(b.server);
      waiting += w;
      reading += r;
    }
    return [waiting, reading];
  }

  /**
   * Swaps in a new config without dropping anything: the new runtime is built completely first;
   * listen sockets on unchanged addresses stay open (no refused connection), added ones open,
   * removed ones stop accepting (their connections go on). New requests use the new runtime at
   * once; requests and tunnels in flight finish on the old one. Live upstream state survives for
   * servers that still exist. Tunnels to servers no longer in the config are drained per
   * `websocket_drain_timeout`. Throws (keeping the old config) if a new address cannot be bound.
   */
  async reload(config: Config): Promise<ReloadResult> {
    if (this.#closing) throw new ShuttingDownError();
    const next = new Runtime(config, this.files, this.states, this.registry, this.limitStore, this.stickySessions);
    const plans = planBinds((config.http?.servers ?? []).flatMap((s) => s.listens));
    const wanted = new Map(plans.map((p) => [p.key, p]));
    const opened: Bound[] = [];
    for (const b of this.#bound) {
      if (wanted.has(b.plan.key) && wanted.get(b.plan.key)!.tls !== b.plan.tls) {
        next.close();
        throw new Error(`the "ssl" parameter of the listen addresses on ${b.plan.key} cannot change on reload; restart Sluice`);
      }
      if ((wanted.get(b.plan.key)?.proxyProtocolKeys.size ?? 0) > 0 && b.front === undefined) {
        next.close();
        throw new Error(`the "proxy_protocol" parameter cannot be added to the listen addresses on ${b.plan.key} on reload; restart Sluice`);
      }
    }
    try {
      for (const plan of plans) {
        if (!this.#bound.some((b) => b.plan.key === plan.key)) opened.push(await this.#listen(plan, next));
      }
    } catch (err) {
      for (const b of opened) {
        b.server.close();
        b.front?.close();
      }
      next.close();
      throw err;
    }
    const closed: string[] = [];
    for (const b of [...this.#bound]) {
      const plan = wanted.get(b.plan.key);
      if (plan) {
        b.plan = plan;
        if (b.front) b.front.plan = plan;
        b.server.headersTimeout = headerTimeoutOf(next, plan);
        // Node reads it for each new connection.
        (b.server as { maxHeaderSize?: number }).maxHeaderSize = maxHeaderSizeOf(next, plan);
        reconfigureAccept(b.server);
      } else {
        b.server.close();
        b.front?.close();
        this.#bound.splice(this.#bound.indexOf(b), 1);
        closed.push(b.plan.key);
      }
    }
    this.#bound.push(...opened);
    const old = this.runtime;
    this.runtime = next;
    this.registry.cap = config.workerConnections;
    await this.#setFleet(config.fleet);
    next.start();
    this.tls.stapler.prefetch(config);
    old.retire();
    const drained = this.#drainRemoved();
    return { opened: opened.map((b) => b.plan.key), closed, drained };
  }

  /**
   * Joins, updates or leaves the fleet for a config's `fleet` (the connection is kept when the
   * Redis stays the same, so reloads leak none). The member never waits for Redis.
   */
  async #setFleet(config: FleetConfig | null): Promise<void> {
    if (config === null) {
      const member = this.fleet;
      this.fleet = null;
      this.runtime.fleet = null;
      this.states.setRemote(new Map());
      await member?.close();
      return;
    }
    if (this.fleet === null) {
      const member = new FleetMember(config, { states: this.states, log: () => this.runtime.mainLog, figures: () => this.#fleetFigures(), limits: () => this.fleetLimits.figures() });
      this.fleet = member;
      await member.start();
    } else {
      await this.fleet.update(config);
    }
    this.runtime.fleet = this.fleet;
  }

  /** What this process publishes to the fleet: its tunnels, connections and view of each upstream server. */
  #fleetFigures(): MemberFigures {
    const keyOf = new Map<PeerState, string>();
    for (const [key, state] of this.states.entries()) keyOf.set(state, key);
    const now = monotonicNow();
    const u: Record<string, Record<string, [number, string]>> = {};
    for (const pool of this.runtime.pools.values()) {
      const servers: Record<string, [number, string]> = {};
      const peers = pool.peers;
      for (const peer of peers) {
        const key = keyOf.get(peer.state);
        if (key !== undefined) servers[key.slice(pool.name.length + 1)] = [peer.state.active, peerAvailability(peer, now, peers.length === 1)];
      }
      u[pool.name] = servers;
    }
    const r = this.#fleetTunnels.published();
    return { t: this.registry.tunnels.size, c: this.registry.open, u, ...(r === undefined ? {} : { r }) };
  }

  /** Tunnels whose upstream server the current config no longer has. */
  #orphaned(): ProxyTunnel[] {
    return orphanedTunnels(this.registry.tunnels, keptServers(this.runtime.config));
  }

  /**
   * What a reload to a config with these upstream servers ({@link keptServers}) would drain,
   * without reloading: `sluice -t` asks the running instance this.
   */
  drainImpact(kept: ReadonlySet<string>): DrainImpact {
    return { open: this.registry.tunnels.size, drained: orphanedTunnels(this.registry.tunnels, kept).length };
  }

  #drainRemoved(): number {
    const orphans = this.#orphaned();
    const drain = this.runtime.config.websocketDrain;
    if (drain) {
      for (const t of orphans) {
        // Spread over the jitter window so that clients do not all reconnect at once.
        const timer = setTimeout(() => {
          if (this.#orphaned().includes(t)) t.goAway('drained after reload');
        }, timerDelay(drain.timeout + Math.floor(Math.random() * drain.jitter)));
        timer.unref();
      }
    }
    return orphans.length;
  }

  /**
   * Graceful shutdown: stop accepting, close idle keep-alive connections, let requests in flight
   * and open tunnels finish for up to `graceMs`; then tunnels go away with close 1001 (each
   * direction at a frame boundary) and whatever is left is destroyed.
   */
  close(graceMs = 10_000): Promise<void> {
    this.#closing ??= (async () => {
      this.rebalancer.close();
      for (const b of this.#bound) {
        b.server.close();
        b.front?.close();
        b.server.closeIdleConnections();
        b.lean?.closeIdle();
      }
      // Dashboard event streams never end on their own; they must not hold the shutdown.
      this.registry.stats?.endViewers();
      const deadline = Date.now() + graceMs;
      while (this.registry.open > 0 && Date.now() < deadline) {
        for (const b of this.#bound) {
          b.server.closeIdleConnections();
          b.lean?.closeIdle();
        }
        await delay(Math.min(50, Math.max(1, deadline - Date.now())));
      }
      if (this.registry.tunnels.size > 0) {
        for (const t of this.registry.tunnels) t.goAway('shutdown');
        const away = Date.now() + GOING_AWAY_GRACE_MS;
        while (this.registry.tunnels.size > 0 && Date.now() < away) await delay(20);
      }
      this.destroy();
      await this.fleet?.close();
      await this.files.close();
    })();
    return this.#closing;
  }

  /** See ProxyHandle.reportUncaught. */
  reportUncaught(err: unknown, origin: string): void {
    const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
    this.runtime.mainLog.log('alert', `${origin} outside any request, still serving: ${text}`);
    if (events.internalError.hasSubscribers) events.internalError.publish({ ctx: null, error: err });
  }

  /** Abortive shutdown: every socket is destroyed now. */
  destroy(): void {
    for (const b of this.#bound) {
      b.server.close();
      b.front?.destroy();
      b.server.closeAllConnections();
    }
    this.rebalancer.close();
    for (const t of this.registry.tunnels) t.destroy('shutdown');
    for (const s of this.registry.sockets) s.destroy();
    this.tls.stapler.close();
    // Leaves the fleet in the background (bounded by its timeout); close() waits for it.
    void this.fleet?.close();
    this.runtime.close();
    this.registry.stats?.close();
  }
}
