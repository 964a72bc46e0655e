import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { collectEchoReport, distinctHeaders } from '../../src/echo/echo-http.js';
import { acceptEchoUpgrade } from '../../src/echo/echo-websocket.js';
import { recorderFor } from './byte-recorder.js';
import { readToEnd, readUntil, type Until } from './raw-client.js';
import type { AfterHook } from './temp.js';
import { DEFAULT_WAIT_MS, withTimeout } from './wait.js';

/** What every fake backend returns: where it listens and how to stop it. */
export interface BackendAddress {
  /** Always `127.0.0.1`. */
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:PORT`, ready for an `upstream { server ...; }` line. */
  readonly addr: string;
  /** Destroys every socket and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** One request an HTTP backend saw, recorded when its head arrived. */
export interface RecordedRequest {
  method: string;
  /** The request target exactly as received. */
  url: string;
  httpVersion: string;
  /** Lower-case names; a string when sent once, an array when repeated. */
  headers: Record<string, string | string[]>;
  /** Names and values as received, alternating, case and order kept. */
  rawHeaders: string[];
  /** Whether it arrived as an upgrade (Node's `'upgrade'` event). */
  upgrade: boolean;
  /** Body as UTF-8 (first MiB); filled in by the default handler only, when the body has ended. */
  body: string;
  remoteAddress: string | null;
  remotePort: number | null;
}

/** Custom request handler for {@link startHttpBackend}; the request is already recorded. */
export type HttpBackendHandler = (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, backend: HttpBackend) => void;

/** Custom upgrade handler for {@link startHttpBackend}; the request is already recorded. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, record: RecordedRequest, backend: HttpBackend) => void;

/** Options for {@link startHttpBackend}. */
export interface HttpBackendOptions {
  /** Name reported in answers. @default `backend-${port}` */
  id?: string;
  /** Replaces the default WebSocket echo (`src/echo`) for upgrade requests. */
  onUpgrade?: UpgradeHandler;
}

/** A running fake HTTP + WebSocket backend. */
export interface HttpBackend extends BackendAddress {
  readonly id: string;
  /** Every request seen, in arrival order, upgrades included. */
  readonly requests: RecordedRequest[];
  /** The underlying server, for tests that need more. */
  readonly server: Server;
  /** `http://127.0.0.1:PORT` + `path`. */
  url(path?: string): string;
  /** Sockets currently open to this backend (for leak checks). */
  openSockets(): number;
}

function recordOf(req: IncomingMessage, upgrade: boolean): RecordedRequest {
  return {
    method: req.method ?? '',
    url: req.url ?? '',
    httpVersion: req.httpVersion,
    headers: distinctHeaders(req),
    rawHeaders: [...req.rawHeaders],
    upgrade,
    body: '',
    remoteAddress: req.socket.remoteAddress ?? null,
    remotePort: req.socket.remotePort ?? null,
  };
}

/**
 * Starts an HTTP backend on 127.0.0.1, port 0, that records every request (`requests`, raw headers
 * included). By default it answers 200 JSON naming itself — the same report as `sluice echo`:
 * `{ id, method, url, httpVersion, headers, rawHeaders, remoteAddress, remotePort, body, bodyBytes }`
 * plus an `X-Echo-Id` header — and accepts WebSocket upgrades and echoes them with the `src/echo`
 * session (101 carries `X-Echo-Id`; path `/whoami` or `?whoami` sends `{"id"}` on open).
 * `close()` destroys every socket at once.
 *
 * @example
 * const a = await startHttpBackend(undefined, { id: 'a' });
 * t.after(() => a.close());
 * const proxy = await startTestProxy(`... upstream u { server ${a.addr}; } ...`, { t });
 */
export async function startHttpBackend(handler?: HttpBackendHandler, options: HttpBackendOptions = {}): Promise<HttpBackend> {
  const server = createHttpServer();
  const sockets = new Set<Socket>();
  const requests: RecordedRequest[] = [];
  const port = await listen(server);
  const id = options.id ?? `backend-${port}`;

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('error', () => undefined);

  let closing: Promise<void> | null = null;
  const backend: HttpBackend = {
    id,
    host: '127.0.0.1',
    port,
    addr: `127.0.0.1:${port}`,
    requests,
    server,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    openSockets: () => sockets.size,
    close() {
      closing ??= destroyAll(server, sockets);
      return closing;
    },
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const record = recordOf(req, false);
    requests.push(record);
    if (handler !== undefined) {
      handler(req, res, record, backend);
      return;
    }
    collectEchoReport(id, req, (report) => {
      record.body = report.body;
      const json = JSON.stringify(report);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json), 'X-Echo-Id': id });
      res.end(json);
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const record = recordOf(req, true);
    requests.push(record);
    if (options.onUpgrade !== undefined) options.onUpgrade(req, socket, head, record, backend);
    else acceptEchoUpgrade(req, socket, head, { id });
  });
  return backend;
}

/**
 * Echo backends named `ids` (each answers with its X-Echo-Id), started one after another and
 * closed by `t.after`.
 *
 * @example const [a, b] = await startHttpBackends(t, 'a', 'b');
 */
export async function startHttpBackends(t: AfterHook, ...ids: string[]): Promise<HttpBackend[]> {
  const out: HttpBackend[] = [];
  for (const id of ids) {
    const b = await startHttpBackend(undefined, { id });
    t.after(() => b.close());
    out.push(b);
  }
  return out;
}

/** One accepted connection of a {@link RawBackend}. */
export interface RawConnection {
  readonly socket: Socket;
  /** Every byte received so far, in order. */
  readonly received: Buffer;
  /** The client sent FIN. */
  readonly ended: boolean;
  /** See raw-client `readUntil`: waits for `until`, returns and consumes all unread bytes. */
  readUntil(until: Until, timeoutMs?: number): Promise<Buffer>;
  /** Waits for the client's FIN (or close) and returns all unread bytes. */
  readToEnd(timeoutMs?: number): Promise<Buffer>;
}

/** Called for each accepted connection; may be async. */
export type RawConnectionHandler = (connection: RawConnection, backend: RawBackend) => void | Promise<void>;

/** A running raw TCP backend, see {@link startRawBackend}. */
export interface RawBackend extends BackendAddress {
  /** Every accepted connection, in order. */
  readonly connections: RawConnection[];
  /** Errors thrown (or rejected) by the handler; `close()` rejects with them. */
  readonly errors: unknown[];
  /**
   * The next connection not yet returned by an earlier call (the first call returns the first
   * connection, even if it was accepted before the call). Rejects after `timeoutMs`.
   */
  nextConnection(timeoutMs?: number): Promise<RawConnection>;
  /** Sockets currently open to this backend (for leak checks). */
  openSockets(): number;
}

/** Options for {@link startRawBackend}. */
export interface RawBackendOptions {
  /** Speak TLS with this certificate (PEM): connections are handed over, and recorded, once the handshake is done. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

/**
 * Starts a `net` server (a `tls` one with `options.tls`) on 127.0.0.1, port 0, for exact-bytes
 * tests: each connection is recorded
 * (every received byte, see `RawConnection`) and handed to `onConnection` (optional; the test can
 * also drive connections through `nextConnection()`). Socket errors are recorded, never thrown.
 * The server allows half-open connections, so the handler decides when to end its side.
 * If the handler throws or rejects, the socket is destroyed and `close()` rejects with the error,
 * so a failing assertion inside a handler still fails the test.
 *
 * @example
 * const backend = await startRawBackend(async (conn) => {
 *   await conn.readUntil('\r\n\r\n');
 *   conn.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
 *     `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`);
 * });
 */
export async function startRawBackend(onConnection?: RawConnectionHandler, options: RawBackendOptions = {}): Promise<RawBackend> {
  const sockets = new Set<Socket>();
  const connections: RawConnection[] = [];
  const errors: unknown[] = [];
  const waiters = new Set<() => boolean>();
  let handedOut = 0;
  const server: NetServer = options.tls === undefined
    ? createNetServer({ allowHalfOpen: true })
    : createTlsServer({ ...options.tls, allowHalfOpen: true });
  const port = await listen(server);

  let closing: Promise<void> | null = null;
  const backend: RawBackend = {
    host: '127.0.0.1',
    port,
    addr: `127.0.0.1:${port}`,
    connections,
    errors,
    openSockets: () => sockets.size,
    async nextConnection(timeoutMs = DEFAULT_WAIT_MS) {
      const index = handedOut++;
      let waiter: (() => boolean) | undefined;
      const arrived = new Promise<void>((resolve) => {
        waiter = () => {
          if (connections.length <= index) return false;
          resolve();
          return true;
        };
        if (!waiter()) waiters.add(waiter);
      });
      try {
        await withTimeout(arrived, timeoutMs, `connection #${index + 1} to the raw backend on port ${port}`);
      } finally {
        if (waiter !== undefined) waiters.delete(waiter);
      }
      return connections[index]!;
    },
    close() {
      closing ??= destroyAll(server, sockets).then(() => {
        if (errors.length > 0) throw new AggregateError(errors, `raw backend handler failed: ${String(errors[0])}`);
      });
      return closing;
    },
  };

  server.on('error', () => undefined);
  server.on('tlsClientError', () => undefined);
  // Every TCP connection counts (and is destroyed by close()), a TLS one from before its handshake.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  server.on(options.tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
    const recorder = recorderFor(socket);
    const connection: RawConnection = {
      socket,
      get received() { return recorder.all; },
      get ended() { return recorder.ended; },
      readUntil: (until, timeoutMs) => readUntil(socket, until, timeoutMs),
      readToEnd: (timeoutMs) => readToEnd(socket, timeoutMs),
    };
    connections.push(connection);
    for (const waiter of waiters) if (waiter()) waiters.delete(waiter);
    if (onConnection === undefined) return;
    const fail = (error: unknown): void => {
      errors.push(error);
      socket.destroy();
    };
    try {
      const result = onConnection(connection, backend);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  });
  return backend;
}

function listen(server: Server | NetServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function destroyAll(server: Server | NetServer, sockets: Set<Socket>): Promise<void> {
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of sockets) socket.destroy();
  await withTimeout(stopped, DEFAULT_WAIT_MS, 'the backend to stop listening');
}
