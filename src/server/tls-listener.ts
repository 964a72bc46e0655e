/**
 * The front of a bound socket that serves `listen ... ssl` addresses. Each accepted connection is
 * looked at before anything else reads it (nginx's ngx_http_ssl_handshake does the same): a TLS
 * record (0x16) or an SSLv2 hello goes to a TLS server of its listen address, which picks the
 * certificate by SNI, negotiates ALPN (h2 where HTTP/2 is on, else http/1.1) and hands the
 * decrypted connection to the HTTP/1.1 server or to the HTTP/2 handler; anything else is plain
 * HTTP sent to an HTTPS port and is answered with nginx's 400 by `plainHttp`. On a bind that
 * also serves plain listen addresses (a wildcard and specific addresses on one port), the
 * connections to a plain address go straight to the HTTP/1.1 server.
 */
import { ProxyError } from '../core/errors.js';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { answerPlainHttpOnTlsPort, answerPlainUpgradeOnTlsPort } from '../proxy/front/tls-refusals.js';
import { errorResponse, sendLocalRaw } from '../proxy/answer/respond.js';
import { applySocketOptions, bindError, listenOn } from './binds.js';
import type { BindPlan } from './binds.js';
import { addressKey } from './connections.js';
import type { BindInfo, ConnectionRegistry } from './connections.js';
import { Http2Connections } from './http2-listener.js';
import type { Runtime } from './runtime.js';
import { serverContextOptions, tlsContextsFor } from './tls-contexts.js';
import { timerDelay } from '../core/timers.js';
import type { ServerConfig } from '../config/types.js';
import { MAX_HELLO_RECORD, helloIds, helloRecordLength } from './client-hello.js';
import { readProxyHeader } from './proxy-protocol.js';
import type { OcspStapler } from './ocsp-stapler.js';
import type { TlsSessionCaches } from './tls-session-cache.js';
import { HEADER_CHECK_INTERVAL_MS } from '../proxy/front/client-timeouts.js';

/**
 * The TLS servers' own handshake limit, a backstop: each connection has the client_header_timeout
 * of its address's default server to send a first byte and finish the handshake (`#onConnection`).
 */
const HANDSHAKE_TIMEOUT_MS = 60_000;

/** The ALPN protocols Sluice speaks over HTTP/1 (nginx offers the same). */
const HTTP1_ALPN = ['http/1.1', 'http/1.0'];

/** What TLS keeps for the life of a proxy process, across reloads. */
export interface TlsProcess {
  readonly sessions: TlsSessionCaches;
  readonly stapler: OcspStapler;
}

/** What a TlsFrontend needs from the proxy that owns it. */
export interface TlsFrontendDeps {
  /** The runtime serving new connections now (it changes on reload). */
  runtime(): Runtime;
  readonly registry: ConnectionRegistry;
  readonly tls: TlsProcess;
}

/** The part of Node.js's TLS handle that reports new sessions (lib/_tls_wrap.js, onnewsession). */
interface SessionHandle {
  onnewsession: (id: Buffer, data: Buffer) => void;
  newSessionDone(): void;
}

/** A listen key's TLS server and the handlers it has on, kept in step with the runtime. */
interface TlsEntry {
  readonly server: TlsServer;
  runtime: Runtime;
  sessions: boolean;
  stapling: boolean;
}

function noop(): void {}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

/** SSLv3/TLS handshake record, or an SSLv2-compatible ClientHello (high bit set). */
function looksLikeTls(first: number): boolean {
  return first === 0x16 || (first & 0x80) !== 0;
}

/**
 * A listening socket for a bind with ssl addresses. `http` receives every HTTP/1.x connection
 * (decrypted ones included) through its 'connection' event, exactly as if it had accepted them.
 */
export class TlsFrontend {
  readonly net: NetServer;
  plan: BindPlan;
  readonly #http: HttpServer;
  readonly #deps: TlsFrontendDeps;
  /** Reads plain HTTP sent to a TLS address, to answer it with nginx's 400. */
  readonly #plain: HttpServer;
  readonly #h2: Http2Connections;
  /** One TLS server per listen key: each has the default certificate of its own address. */
  readonly #tls = new Map<string, TlsEntry>();
  /** TLS 1.3 PSK identities by the ClientHello's legacy session id (hex), until Node.js asks for them. */
  readonly #psk = new Map<string, readonly Buffer[]>();
  /** Connections not handed over yet (sniffing or handshaking), destroyed by destroy(). */
  readonly #pending = new Set<Socket>();
  /** The client_header_timeout timer of each connection in its TLS handshake. */
  readonly #handshakeDeadline = new WeakMap<Socket, NodeJS.Timeout>();

  constructor(plan: BindPlan, http: HttpServer, deps: TlsFrontendDeps) {
    this.plan = plan;
    this.#http = http;
    this.#deps = deps;
    this.net = createNetServer({ noDelay: true }, (raw) => this.#onConnection(raw));
    this.#plain = createDetachedHttpServer(deps.runtime().clientHeaderTimeout(plan.key));
    this.#plain.on('request', (req: IncomingMessage, res: ServerResponse) => answerPlainHttpOnTlsPort(deps.runtime(), req, res));
    this.#plain.on('upgrade', (req: IncomingMessage, socket: Socket) => answerPlainUpgradeOnTlsPort(deps.runtime(), req, socket));
    this.#plain.on('connect', (req: IncomingMessage, socket: Socket) => answerPlainUpgradeOnTlsPort(deps.runtime(), req, socket));
    this.#plain.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
    this.#h2 = new Http2Connections(deps);
  }

  /**
   * Registers a connection with the proxy (worker_connections); false when refused: answered
   * with an HTTP/1.1 503, or just closed for an HTTP/2 connection (`answer` false).
   */
  #accept(socket: Socket, tls: boolean, answer = true): boolean {
    const bind: BindInfo = { key: this.plan.key, configuredPort: this.plan.port, tls };
    if (this.#deps.registry.accept(socket, bind)) return true;
    const refusal = new ProxyError('TOO_MANY_CONNECTIONS');
    this.#deps.runtime().mainLog.log('alert', `${this.#deps.registry.cap} ${refusal.message}`);
    if (answer) sendLocalRaw(socket, errorResponse(refusal.status, null, null, null), null);
    else socket.destroy();
    return false;
  }

  listen(): Promise<void> {
    const plan = this.plan;
    return new Promise<void>((resolve, reject) => {
      this.net.once('error', reject);
      listenOn(this.net, plan, () => {
        this.net.removeListener('error', reject);
        // The HTTP servers never listen themselves; 'listening' starts their header-timeout checks.
        this.#http.emit('listening');
        this.#plain.emit('listening');
        resolve();
      });
    });
  }

  address(): AddressInfo | string | null {
    return this.net.address();
  }

  /** Stops accepting; connections already accepted go on (HTTP/2 ones are told GOAWAY and finish their streams). */
  close(): void {
    this.net.close();
    for (const t of this.#tls.values()) t.server.close();
    this.#plain.close();
    this.#h2.close();
  }

  /** Also destroys connections still sniffing or handshaking, and every HTTP/2 session. */
  destroy(): void {
    this.close();
    for (const s of this.#pending) s.destroy();
    this.#pending.clear();
    this.#h2.destroy();
  }

  /** The listen key a connection belongs to: its own address if configured, else the bind's (wildcard). */
  #listenKey(raw: Socket): string {
    const exact = addressKey(raw.localAddress ?? '', this.plan.port);
    return this.plan.listenKeys.includes(exact) ? exact : this.plan.key;
  }

  #onConnection(raw: Socket): void {
    raw.on('error', noop);
    applySocketOptions(raw, this.plan.socket);
    this.#pending.add(raw);
    // nginx's client_header_timeout runs from the accept through the handshake (and on to the end
    // of the request head, which the HTTP server times from the hand-over).
    const key = this.#listenKey(raw);
    const deadline = setTimeout(destroySocket, timerDelay(this.#deps.runtime().clientHeaderTimeout(key)), raw);
    raw.once('close', () => {
      clearTimeout(deadline);
      this.#pending.delete(raw);
    });
    if (this.plan.proxyProtocolKeys.has(key)) {
      // `listen ... proxy_protocol`: the balancer's header comes before anything else (TLS too).
      readProxyHeader(raw, (r) => {
        if (!r.ok) {
          if (r.failure.kind === 'broken') {
            this.#deps.runtime().mainLog.log('error', `${r.failure.log} while reading PROXY protocol, client: ${raw.remoteAddress ?? ''}, server: ${key}`);
          }
          raw.destroy();
          return;
        }
        this.#deps.registry.proxyProtocol.set(raw, r.info);
        this.#sniff(raw, key, deadline);
        raw.resume();
      });
      return;
    }
    this.#sniff(raw, key, deadline);
  }

  /** TLS or plain: the first record decides where the connection goes. */
  #sniff(raw: Socket, key: string, deadline: NodeJS.Timeout): void {
    readFirstRecord(raw, (chunk: Buffer) => {
      const rt = this.#deps.runtime();
      const sslKey = (rt.config.http?.servers ?? []).some((s) => s.listens.some((l) => l.key === key && l.ssl));
      if (!sslKey) {
        clearTimeout(deadline);
        this.#pending.delete(raw);
        this.#http.emit('connection', raw);
        raw.resume();
        return;
      }
      if (!looksLikeTls(chunk[0]!)) {
        // nginx: "client sent plain HTTP request to HTTPS port"; answered once the request is read.
        clearTimeout(deadline);
        this.#pending.delete(raw);
        if (!this.#accept(raw, false)) return;
        this.#plain.emit('connection', raw);
        raw.resume();
        return;
      }
      this.#handshakeDeadline.set(raw, deadline);
      this.#rememberPsk(raw, chunk);
      this.#tlsServer(key, rt).emit('connection', raw);
    });
  }

  /** Keeps a TLS 1.3 ClientHello's PSK identities for the session cache (client-hello.ts says why). */
  #rememberPsk(raw: Socket, hello: Buffer): void {
    const ids = helloIds(hello);
    if (ids === null || ids.sessionId.length === 0 || ids.pskIdentities.length === 0) return;
    const id = ids.sessionId.toString('hex');
    this.#psk.set(id, ids.pskIdentities);
    raw.once('close', () => this.#psk.delete(id));
  }

  /** The address's default server now: its session cache serves every handshake there (nginx). */
  #defaultServer(key: string): ServerConfig | null {
    return this.#deps.runtime().routes.get(key)?.group.defaultServer ?? null;
  }

  #onNewSession(key: string, id: Buffer, data: Buffer, done: () => void): void {
    try {
      const server = this.#defaultServer(key);
      if (server !== null) this.#deps.tls.sessions.store(server, id, data);
    } catch (err) {
      this.#deps.runtime().mainLog.log('alert', `storing a TLS session failed: ${(err as Error).message}`);
    }
    done();
  }

  #onResumeSession(key: string, id: Buffer, done: (err: Error | null, data: Buffer | null) => void): void {
    const hex = id.toString('hex');
    const psk = this.#psk.get(hex) ?? [];
    this.#psk.delete(hex);
    let found: Buffer | null = null;
    let server: ServerConfig | null = null;
    const ids = [id, ...psk];
    try {
      server = this.#defaultServer(key);
      if (server !== null) found = this.#deps.tls.sessions.lookup(server, ids);
    } catch (err) {
      this.#lookupFailed(err);
    }
    // Not in this process's copy of a shared cache: the handshake waits for the primary's.
    const asked = found === null && server !== null ? this.#deps.tls.sessions.fetchShared(server, ids) : null;
    if (asked === null) {
      done(null, found);
      return;
    }
    asked.then((s) => done(null, s), (err: unknown) => {
      this.#lookupFailed(err);
      done(null, null);
    });
  }

  #lookupFailed(err: unknown): void {
    this.#deps.runtime().mainLog.log('alert', `looking up a TLS session failed: ${(err as Error).message}`);
  }

  #onOcspRequest(certificate: Buffer, done: (err: Error | null, response?: Buffer) => void): void {
    let response: Buffer | null = null;
    try {
      response = this.#deps.tls.stapler.staple(this.#deps.runtime().config, certificate);
    } catch (err) {
      this.#deps.runtime().mainLog.log('alert', `OCSP stapling failed: ${(err as Error).message}`);
    }
    if (response === null) done(null);
    else done(null, response);
  }

  /**
   * A TLS 1.3 server sends its session tickets after the handshake, and Node.js announces each on
   * `socket.server` ('newSession'): by then the HTTP server has taken the socket and made itself
   * `socket.server`, so the announcement would miss the cache. The handle's own callback is
   * answered here instead, for the rest of the connection's life.
   */
  #keepSessions(socket: TLSSocket, key: string): void {
    const handle = (socket as unknown as { _handle: SessionHandle | null })._handle;
    if (handle === null || typeof handle.onnewsession !== 'function' || typeof handle.newSessionDone !== 'function') return;
    handle.onnewsession = (id: Buffer, data: Buffer): void => {
      this.#onNewSession(key, id, data, () => {
        if ((socket as unknown as { _handle: unknown })._handle !== null) handle.newSessionDone();
      });
    };
  }

  /**
   * Node.js asks for sessions and staples only while these listeners exist (and then pauses every
   * handshake for them), so they are on only where the configuration uses them.
   */
  #syncEvents(entry: TlsEntry, key: string, rt: Runtime): void {
    const server = entry.server;
    const def = rt.routes.get(key)?.group.defaultServer;
    const sessions = def !== undefined && this.#deps.tls.sessions.enabled(def);
    if (sessions !== entry.sessions) {
      entry.sessions = sessions;
      if (sessions) {
        server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => this.#onNewSession(key, id, data, done));
        server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => this.#onResumeSession(key, id, done));
      } else {
        server.removeAllListeners('newSession');
        server.removeAllListeners('resumeSession');
      }
    }
    const stapling = this.#deps.tls.stapler.uses(rt.config);
    if (stapling !== entry.stapling) {
      entry.stapling = stapling;
      if (stapling) server.on('OCSPRequest', (cert: Buffer, _issuer: Buffer | null, done: (err: Error | null, response?: Buffer) => void) => this.#onOcspRequest(cert, done));
      else server.removeAllListeners('OCSPRequest');
    }
  }

  /** The TLS server of a listen key, its default certificate and client-certificate request kept in step with reloads. */
  #tlsServer(key: string, rt: Runtime): TlsServer {
    let entry = this.#tls.get(key);
    if (entry !== undefined && entry.runtime !== rt) {
      const options = this.#defaultOptions(key, rt);
      if (options !== null) entry.server.setSecureContext(options);
      // Read by Node for each new connection (tls.Server keeps the option as this property).
      (entry.server as TlsServer & { requestCert: boolean }).requestCert = tlsContextsFor(rt.config).requestsClientCert(key);
      entry.runtime = rt;
      this.#syncEvents(entry, key, rt);
    }
    if (entry === undefined) {
      const server = createTlsServer({
        ...this.#defaultOptions(key, rt),
        requestCert: tlsContextsFor(rt.config).requestsClientCert(key),
        // nginx verifies client certificates after the handshake and answers 400 (ssl_verify_client).
        rejectUnauthorized: false,
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
        SNICallback: (name, cb) => {
          const now = this.#deps.runtime();
          const routes = now.routes.get(key);
          const contexts = tlsContextsFor(now.config);
          const server = routes === undefined ? null : contexts.serverFor(routes, name);
          cb(null, server === null ? undefined : contexts.contextFor(server) ?? undefined);
        },
        ALPNCallback: ({ servername, protocols }) => {
          const now = this.#deps.runtime();
          const routes = now.routes.get(key);
          const contexts = tlsContextsFor(now.config);
          const server = routes === undefined ? null : contexts.serverFor(routes, servername ?? null);
          if (server !== null && protocols.includes('h2') && contexts.offersHttp2(key, server)) return 'h2';
          return HTTP1_ALPN.find((p) => protocols.includes(p));
        },
      });
      server.on('secureConnection', (socket: TLSSocket) => this.#onSecure(socket, key));
      server.on('tlsClientError', (err: Error & { reason?: string; library?: string }, socket: TLSSocket) => {
        // nginx logs failed client handshakes at info: they are the client's business.
        const why = err.library !== undefined ? `SSL: ${err.library}::${err.reason ?? err.message}` : ((err as NodeJS.ErrnoException).code ?? err.message);
        this.#deps.runtime().mainLog.log('info', `SSL_do_handshake() failed (${why}) while SSL handshaking, client: ${socket.remoteAddress ?? ''}, server: ${key}`);
        socket.destroy();
      });
      entry = { server, runtime: rt, sessions: false, stapling: false };
      this.#syncEvents(entry, key, rt);
      this.#tls.set(key, entry);
    }
    return entry.server;
  }

  #defaultOptions(key: string, rt: Runtime): ReturnType<typeof serverContextOptions> {
    const routes = rt.routes.get(key);
    return routes === undefined ? null : serverContextOptions(routes.group.defaultServer);
  }

  #onSecure(socket: TLSSocket, key: string): void {
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    if (raw !== undefined) {
      this.#pending.delete(raw);
      clearTimeout(this.#handshakeDeadline.get(raw));
      const pp = this.#deps.registry.proxyProtocol.get(raw);
      if (pp !== undefined) this.#deps.registry.proxyProtocol.set(socket, pp);
    }
    socket.on('error', noop);
    if (this.#tls.get(key)?.sessions === true) this.#keepSessions(socket, key);
    if (socket.alpnProtocol === 'h2') {
      if (this.#accept(socket, true, false)) this.#h2.serve(socket, key);
      return;
    }
    this.#http.emit('connection', socket);
  }
}

/**
 * Calls `done` with the connection's first bytes once a whole TLS record is there (a ClientHello
 * may come in several packets; the session cache reads all of it), or at once for anything that is
 * not a TLS handshake. The bytes are put back for whoever reads the socket next.
 */
function readFirstRecord(raw: Socket, done: (first: Buffer) => void): void {
  const chunks: Buffer[] = [];
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    const all = chunks.length === 1 ? chunk : Buffer.concat(chunks);
    const need = helloRecordLength(all);
    if (need !== null && all.length < need && all.length < MAX_HELLO_RECORD) return;
    raw.removeListener('data', onData);
    raw.pause();
    raw.unshift(all);
    done(all);
  };
  raw.on('data', onData);
}

/** An HTTP/1 server that never listens: it parses what a TlsFrontend hands it. */
export function createDetachedHttpServer(headersTimeout: number): HttpServer {
  return createHttpServer({
    requestTimeout: 0, headersTimeout: timerDelay(headersTimeout), connectionsCheckingInterval: HEADER_CHECK_INTERVAL_MS,
    keepAliveTimeout: 0, requireHostHeader: false, noDelay: true,
  });
}

/** Opens the listening socket of a bind with ssl addresses; `http` serves its HTTP/1.x connections. */
export async function listenTls(plan: BindPlan, http: HttpServer, deps: TlsFrontendDeps): Promise<TlsFrontend> {
  const front = new TlsFrontend(plan, http, deps);
  try {
    await front.listen();
  } catch (err) {
    throw bindError(plan.key, err as NodeJS.ErrnoException);
  }
  front.net.on('error', (err) => deps.runtime().mainLog.log('crit', `listener ${plan.key}: ${err.message}`));
  return front;
}
