import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { respondWithEcho } from './echo-http.js';
import { acceptEchoUpgrade, type EchoSession } from './echo-websocket.js';

/**
 * How long {@link EchoServer.close} waits for open connections to finish (WebSocket sessions get a
 * 1001 close) before it destroys them.
 */
export const ECHO_SHUTDOWN_GRACE_MS = 2000;

/** Options for {@link startEchoServer}. */
export interface EchoServerOptions {
  /** @default 0 (any free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Name reported in every answer. @default `echo-${port}` with the port actually bound */
  id?: string;
}

/** A running echo backend. */
export interface EchoServer {
  readonly id: string;
  readonly port: number;
  readonly host: string;
  /** `ws://HOST:PORT/` (IPv6 hosts in brackets); `http://` works on the same port. */
  readonly url: string;
  /**
   * Stops accepting, sends 1001 to WebSocket sessions, lets in-flight HTTP requests finish, then
   * after {@link ECHO_SHUTDOWN_GRACE_MS} destroys whatever is left. Idempotent: every call returns
   * the same promise.
   */
  close(): Promise<void>;
}

/**
 * Starts the `sluice echo` backend: one port that speaks both WebSocket and HTTP.
 *
 * WebSocket (GET with `Upgrade: websocket`, `Connection: upgrade`, `Sec-WebSocket-Key`,
 * `Sec-WebSocket-Version: 13`; any other upgrade gets 400 with a short text): answers 101 with
 * `Sec-WebSocket-Accept`, the first offered subprotocol, no extensions and `X-Echo-Id`; then echoes
 * every message as it came (text stays text, binary stays binary, fragments reassembled, up to
 * 64 MiB), answers ping with pong and close with a close carrying the same code. On open it sends
 * nothing, except: when the path is `/whoami` or the query has `whoami` (`/?whoami`), it sends one
 * text message `{"id":"<id>"}` right after the 101 (in the same write) so demos can see which
 * backend answered.
 *
 * HTTP (any other request): 200 `application/json` with
 * `{ id, method, url, httpVersion, headers, rawHeaders, remoteAddress, remotePort, body, bodyBytes }`
 * (see `EchoHttpReport`) and an `X-Echo-Id` header. Keep-alive works.
 */
export async function startEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const id = options.id ?? `echo-${port}`;
  const sessions = new Set<EchoSession>();

  server.on('error', ignoreServerError);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => respondWithEcho(id, req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const session = acceptEchoUpgrade(req, socket, head, { id });
    if (session === null) return;
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
  });

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= shutDown(server, sessions);
    return closing;
  };
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return Object.freeze({ id, port, host, url: `ws://${urlHost}:${port}/`, close });
}

async function shutDown(server: Server, sessions: Set<EchoSession>): Promise<void> {
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  for (const session of sessions) session.goingAway();
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'timeout'>((resolve) => { timer = setTimeout(resolve, ECHO_SHUTDOWN_GRACE_MS, 'timeout'); });
  const outcome = await Promise.race([stopped, graceOver]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    server.closeAllConnections();
    for (const session of sessions) session.destroy();
    await stopped;
  }
}

function ignoreServerError(): void {
  // After listen succeeded the server only reports per-connection trouble, handled per socket.
}

const ECHO_USAGE = 'usage: sluice echo [--port N] [--host HOST] [--id NAME]\n' +
  '  Runs a WebSocket + HTTP echo backend for demos and tests.\n' +
  '  --port N     port to listen on (default 0: any free port)\n' +
  '  --host HOST  address to bind (default 127.0.0.1)\n' +
  '  --id NAME    name reported in answers (default echo-PORT)\n' +
  '  WebSocket path /whoami (or ?whoami) sends {"id": NAME} on open.\n';

/** Where {@link runEchoCommand} writes and what stops it, injectable for tests. */
export interface EchoCommandIo {
  /** @default process.stdout */
  stdout?: { write(text: string): unknown };
  /** Aborting it stops the server like SIGINT does. */
  signal?: AbortSignal;
}

/**
 * `sluice echo [--port N] [--host H] [--id NAME]`: starts {@link startEchoServer}, prints
 * `sluice echo: <id> listening on ws://HOST:PORT/ (HTTP too)`, and resolves once SIGINT or SIGTERM
 * (or `io.signal`) has stopped it gracefully. `-h`/`--help` prints usage and resolves. It never
 * calls `process.exit`; its signal listeners are removed when it stops. Bad arguments reject with an
 * Error whose message names the problem and includes the usage (the CLI prints it and exits 2).
 */
export async function runEchoCommand(argv: string[], io: EchoCommandIo = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const parsed = parseEchoArgs(argv);
  if (parsed === 'help') {
    stdout.write(ECHO_USAGE);
    return;
  }
  const server = await startEchoServer(parsed);
  stdout.write(`sluice echo: ${server.id} listening on ${server.url} (HTTP too)\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (io.signal?.aborted === true) stop();
    else io.signal?.addEventListener('abort', stop);
  });
  await server.close();
}

function parseEchoArgs(argv: string[]): EchoServerOptions | 'help' {
  const options: EchoServerOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return 'help';
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (name !== '--port' && name !== '--host' && name !== '--id') {
      throw new Error(`sluice echo: unknown argument "${arg}"\n${ECHO_USAGE}`);
    }
    let value: string | undefined;
    if (eq > 0 && arg.startsWith('--')) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined || value === '') throw new Error(`sluice echo: ${name} needs a value\n${ECHO_USAGE}`);
    if (name === '--port') {
      const port = Number(value);
      if (!/^[0-9]+$/.test(value) || port > 65535) {
        throw new Error(`sluice echo: --port must be a number from 0 to 65535, got "${value}"\n${ECHO_USAGE}`);
      }
      options.port = port;
    } else if (name === '--host') {
      options.host = value;
    } else {
      options.id = value;
    }
  }
  return options;
}
