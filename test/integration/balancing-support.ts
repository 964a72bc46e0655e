// Shared by balancing-methods and health-checks: an HTTP client and a raw WebSocket client that can
// dial from a chosen loopback source address (ip_hash), backends with a switchable health
// endpoint, recorders of the balancer's named events, and small oracles of nginx's hash methods.
// No tests here.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { request, type Agent, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { crc32 } from 'node:zlib';
import { respondWithEcho } from '../../src/echo/echo-http.js';
import { startHttpBackend, type HttpBackend, type HttpBackendOptions } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { headerValue, headerValues, parseResponseHead, waitForBytes, wsHandshakeRequest, type ResponseHead } from '../helpers/raw-client.js';
import type { AfterHook } from '../helpers/temp.js';
import { withTimeout } from '../helpers/wait.js';

/** Generous bound for every wait here: the machine is shared and slow at times. */
export const WAIT_MS = 10_000;

/** What an HTTP exchange through the proxy gave. */
export interface Reply {
  status: number;
  /** X-Echo-Id of the backend that answered, or '-'. */
  id: string;
  /** Every Set-Cookie line, in order. */
  cookies: string[];
  headers: IncomingHttpHeaders;
  body: string;
}

export interface GetOptions {
  headers?: Record<string, string>;
  /** Source address of the client connection (any 127.x.y.z works on Linux loopback). */
  localAddress?: string;
  /** A keep-alive agent for many requests; default: a fresh connection per request. */
  agent?: Agent;
  method?: string;
}

/** One HTTP request to the proxy on 127.0.0.1:`port`; resolves with the whole answer. */
export function get(port: number, path: string, options: GetOptions = {}): Promise<Reply> {
  const done = new Promise<Reply>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers ?? {},
      agent: options.agent ?? false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => {
        const id = res.headers['x-echo-id'];
        resolve({
          status: res.statusCode ?? 0,
          id: typeof id === 'string' ? id : '-',
          cookies: res.headers['set-cookie'] ?? [],
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    req.once('error', reject);
    req.end();
  });
  return withTimeout(done, WAIT_MS, `the answer to GET ${path}`);
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the order of `items`. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** An opened (or refused) WebSocket handshake through the proxy, raw. */
export interface WsClient {
  socket: Socket;
  head: ResponseHead;
  status: number;
  /** X-Echo-Id of the 101 (the backend that took the tunnel), or '-'. */
  id: string;
  cookies: string[];
}

/**
 * Sends a WebSocket handshake (RFC 6455 sample key) from `localAddress` if given and reads the
 * response head; the socket stays open (a tunnel on 101) and is destroyed by `t.after`.
 */
export async function openWs(
  t: AfterHook, port: number, options: { path?: string; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<WsClient> {
  const socket = connect({ port, host: '127.0.0.1', ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) });
  t.after(() => socket.destroy());
  recorderFor(socket);
  await withTimeout(new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  }), WAIT_MS, `a connection to port ${port}`);
  socket.write(wsHandshakeRequest({ path: options.path ?? '/', extraHeaders: options.headers ?? {} }));
  const head = parseResponseHead(await waitForBytes(socket, '\r\n\r\n', WAIT_MS));
  recorderFor(socket).consume(head.headLength);
  return { socket, head, status: head.statusCode, id: headerValue(head, 'x-echo-id') ?? '-', cookies: headerValues(head, 'set-cookie') };
}

/** What a {@link HealthBackend} answers on `/health*`. */
export interface HealthAnswer { status: number; headers?: Record<string, string>; body?: string }

/** A backend whose `/health*` answers are switchable; every other request gets the echo report. */
export interface HealthBackend extends HttpBackend {
  /** What `/health*` answers now (default 200 "ok"). */
  health: HealthAnswer;
  /** When true, every other request is answered 500 (a sick application, not only a sick probe). */
  failing: boolean;
  /** Each health probe's status, in arrival order. */
  readonly probes: number[];
  /** Proxied (non-health) requests, upgrades included. */
  served(): number;
}

export async function startHealthBackend(t: AfterHook, id: string, options: Omit<HttpBackendOptions, 'id'> = {}): Promise<HealthBackend> {
  const probes: number[] = [];
  // The handler reads the switches from the returned object, so tests flip them in place.
  const self: Pick<HealthBackend, 'health' | 'failing'> = { health: { status: 200 }, failing: false };
  const backend = await startHttpBackend((req, res) => {
    if ((req.url ?? '').startsWith('/health')) {
      req.resume();
      const { status, headers = {}, body = 'ok' } = self.health;
      probes.push(status);
      res.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(body), 'X-Echo-Id': id });
      res.end(body);
    } else if (self.failing) {
      req.resume();
      res.writeHead(500, { 'Content-Length': '4', 'X-Echo-Id': id });
      res.end('sick');
    } else {
      respondWithEcho(id, req, res);
    }
  }, { ...options, id });
  t.after(() => backend.close());
  return Object.defineProperties(backend as HealthBackend, {
    health: { get: () => self.health, set: (v: HealthAnswer) => void (self.health = v) },
    failing: { get: () => self.failing, set: (v: boolean) => void (self.failing = v) },
    probes: { value: probes },
    served: { value: () => backend.requests.filter((r) => !r.url.startsWith('/health') && !r.url.startsWith('/ws-health')).length },
  });
}

/** One message of `sluice:upstream:health`. */
export interface HealthEvent { upstream: string; server: string; healthy: boolean; reason: string }
/** One message of `sluice:upstream:pick`. */
export interface PickEvent { upstream: string; server: string; reason: string }

/** Records the messages of `channel` about upstream `upstream` until the test ends. */
export function record<E extends { upstream: string }>(t: AfterHook, channel: string, upstream: string, onEvent?: (e: E) => void): E[] {
  const seen: E[] = [];
  const listener = (message: unknown): void => {
    const e = message as E;
    if (e.upstream !== upstream) return;
    seen.push({ ...e });
    onEvent?.(e);
  };
  subscribe(channel, listener);
  t.after(() => unsubscribe(channel, listener));
  return seen;
}

/** The cookie's value and attributes from one Set-Cookie line. */
export function parseSetCookie(line: string): { name: string; value: string; attributes: string[] } {
  const [pair = '', ...attributes] = line.split('; ');
  const eq = pair.indexOf('=');
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes };
}

// Oracles: nginx's own arithmetic for equal-weight servers, written from its sources
// (ngx_http_upstream_ip_hash_module.c, ngx_http_upstream_hash_module.c), so the tests check that
// Sluice picks exactly what nginx would, not only that it is stable.

/** ip_hash: index of the server (0-based, equal weights) nginx picks for IPv4 `addr`, skipping `unavailable`. */
export function ipHashIndex(addr: string, servers: number, unavailable: ReadonlySet<number> = new Set()): number {
  const octets = addr.split('.').slice(0, 3).map(Number);
  let hash = 89;
  for (let tries = 0; tries <= 20; tries++) {
    for (const b of octets) hash = (hash * 113 + b) % 6271;
    const index = hash % servers;
    if (!unavailable.has(index)) return index;
  }
  return -1;
}

/** `hash KEY`: index of the server nginx picks first for `key` (equal weights). */
export function hashIndex(key: string, servers: number): number {
  return ((crc32(key) >>> 16) & 0x7fff) % servers;
}

/** `hash KEY consistent`: the ketama ring nginx builds for `names` ("host:port", weight 1 each). */
export function chashRing(names: readonly string[]): (key: string) => string {
  const points: { hash: number; name: string }[] = [];
  for (const name of names) {
    const colon = name.lastIndexOf(':');
    const base = crc32(Buffer.concat([Buffer.from(name.slice(0, colon)), Buffer.from([0]), Buffer.from(name.slice(colon + 1))]));
    let prev = 0;
    for (let j = 0; j < 160; j++) {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32LE(prev);
      const hash = crc32(bytes, base) >>> 0;
      points.push({ hash, name });
      prev = hash;
    }
  }
  points.sort((a, b) => a.hash - b.hash);
  return (key) => {
    const h = crc32(key) >>> 0;
    const at = points.findIndex((p) => p.hash >= h);
    return points[at < 0 ? 0 : at]!.name;
  };
}

/** Counts of each value. */
export function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
