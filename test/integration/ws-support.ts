// Shared by the WebSocket integration tests (ws-handshake, ws-data, ws-close): inline configs,
// a scripted raw upstream that answers an upgrade with chosen bytes, request-head parsing, and a
// recorder of the proxy's tunnel events and a frame splitter for relayed streams. No tests here.
import { createHash } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestContext } from '../../src/proxy/context/request-context.js';
import { FrameParser, type Frame } from '../../src/websocket/frame-parser.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startRawBackend, type RawBackend, type RawConnection } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { SAMPLE_ACCEPT, parseResponseHead, readToEnd, waitForBytes, wsHandshakeRequest, type ResponseHead } from '../helpers/raw-client.js';
import type { AfterHook } from '../helpers/temp.js';
import { delay, waitFor, withTimeout } from '../helpers/wait.js';

/** Generous bound for waits in these tests: the machine is shared and slow at times. */
export const WAIT_MS = 10_000;

/** A payload's SHA-256 in hex: large payloads compare in one readable assertion. */
export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The classic nginx WebSocket lines (map in http{}, headers in the location). */
export const CLASSIC_MAP = `map $http_upgrade $connection_upgrade { default upgrade; '' close; }`;
export const CLASSIC_LOCATION = `
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`;

/** Lines that make nginx (and Sluice) forward any Upgrade token. */
export const FORWARD_UPGRADE = `
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";`;

/** An nginx-dialect config with one server on 127.0.0.1:0 and `location /` proxying to `addr`. */
export function proxyConfig(addr: string, options: { location?: string; http?: string; server?: string } = {}): string {
  return `
events {}
http {
  ${options.http ?? ''}
  server {
    listen 127.0.0.1:0;
    ${options.server ?? ''}
    location / {
      proxy_pass http://${addr};
      ${options.location ?? ''}
    }
  }
}
`;
}

/** A parsed request head as the upstream received it. */
export interface RequestHead {
  /** The request line exactly, without CRLF. */
  requestLine: string;
  method: string;
  target: string;
  /** Header lines in order, names as sent. */
  headers: [string, string][];
  /** The head's length including the blank line. */
  length: number;
}

export function parseRequestHead(buf: Buffer): RequestHead {
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) throw new Error(`no complete request head in ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`);
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const requestLine = lines[0] ?? '';
  const [method = '', target = ''] = requestLine.split(' ');
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed request header line ${JSON.stringify(line)}`);
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { requestLine, method, target, headers, length: end + 4 };
}

/** Every value of header `name` (case-insensitive) in order. */
export function values(head: { headers: [string, string][] }, name: string): string[] {
  const lower = name.toLowerCase();
  return head.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** Lower-cased header names, in order. */
export function names(head: { headers: [string, string][] }): string[] {
  return head.headers.map(([n]) => n.toLowerCase());
}

/** A 101 response head for a WebSocket upgrade with the sample accept key, plus extra lines. */
export function switching101(options: { accept?: string | null; upgrade?: string | null; extra?: readonly string[] } = {}): string {
  let text = 'HTTP/1.1 101 Switching Protocols\r\n';
  if (options.upgrade !== null) text += `Upgrade: ${options.upgrade ?? 'websocket'}\r\n`;
  text += 'Connection: Upgrade\r\n';
  if (options.accept !== null) text += `Sec-WebSocket-Accept: ${options.accept ?? SAMPLE_ACCEPT}\r\n`;
  for (const line of options.extra ?? []) text += `${line}\r\n`;
  return `${text}\r\n`;
}

/** What a scripted upstream connection saw, given to the test. */
export interface ScriptedExchange {
  conn: RawConnection;
  head: RequestHead;
  /** The raw head bytes. */
  headBytes: Buffer;
  /** Bytes after the head that arrived before the response was written. */
  early: Buffer;
}

/**
 * A raw upstream that reads each request head and answers with `respond(head)` in ONE write (a
 * 101 plus frames, say). `respond` may be async; returning null writes nothing. Each exchange is
 * pushed to `exchanges` so the test can look at exact bytes.
 */
export async function startScriptedUpstream(
  t: AfterHook,
  respond: (x: ScriptedExchange) => string | Buffer | null | Promise<string | Buffer | null>,
): Promise<RawBackend & { exchanges: ScriptedExchange[]; nextExchange(timeoutMs?: number): Promise<ScriptedExchange> }> {
  const exchanges: ScriptedExchange[] = [];
  let handedOut = 0;
  const backend = await startRawBackend(async (conn) => {
    const bytes = await conn.readUntil('\r\n\r\n', WAIT_MS);
    const head = parseRequestHead(bytes);
    const x: ScriptedExchange = { conn, head, headBytes: Buffer.from(bytes.subarray(0, head.length)), early: Buffer.from(bytes.subarray(head.length)) };
    exchanges.push(x);
    const answer = await respond(x);
    if (answer !== null && !conn.socket.destroyed) conn.socket.write(typeof answer === 'string' ? Buffer.from(answer, 'latin1') : answer);
  });
  t.after(() => backend.close());
  return Object.assign(backend, {
    exchanges,
    async nextExchange(timeoutMs = WAIT_MS): Promise<ScriptedExchange> {
      const index = handedOut++;
      await waitFor(() => exchanges.length > index, { timeoutMs, what: `upstream exchange #${index + 1}` });
      return exchanges[index]!;
    },
  });
}

/** Connects like `rawConnect`, but half-open capable: a FIN from the proxy does not end our side. */
export async function halfOpenConnect(port: number, timeoutMs = WAIT_MS): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  recorderFor(socket);
  try {
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }), timeoutMs, `a connection to port ${port}`);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  socket.setNoDelay(true);
  return socket;
}

/** A scripted upstream, see {@link startScriptedUpstream}. */
export type ScriptedUpstream = Awaited<ReturnType<typeof startScriptedUpstream>>;

/** Both ends of an established tunnel through the proxy, as raw sockets. */
export interface RawTunnel {
  /** The client socket (half-open capable), positioned after the 101 head. */
  client: Socket;
  /** The upstream's side of the same tunnel. */
  up: RawConnection;
  head: ResponseHead;
}

/**
 * Opens a WebSocket tunnel with raw sockets on both sides: the client sends the sample handshake,
 * `upstream` (which must answer 101) accepts it. The client is destroyed by `t.after`.
 */
export async function openRawTunnel(t: AfterHook, port: number, upstream: ScriptedUpstream, path = '/'): Promise<RawTunnel> {
  const client = await halfOpenConnect(port);
  t.after(() => client.destroy());
  client.write(wsHandshakeRequest({ path }));
  const head = parseResponseHead(await waitForBytes(client, '\r\n\r\n', WAIT_MS));
  recorderFor(client).consume(head.headLength);
  if (head.statusCode !== 101) throw new Error(`expected a 101, got ${head.statusLine}`);
  const x = await upstream.nextExchange();
  return { client, up: x.conn, head };
}

/** One tunnel event as published on `sluice:tunnel:open` / `sluice:tunnel:close`. */
export interface TunnelEvent {
  ctx: RequestContext;
  upstream?: string;
  server?: string;
  reason?: string;
}

/**
 * Records the tunnel events (node:diagnostics_channel) of the proxy listening on `proxyPort` until
 * the test ends. Events of other proxies (an earlier test's, still closing) are ignored.
 */
export function tunnelEvents(t: AfterHook, proxyPort: number): { opened: TunnelEvent[]; closed: TunnelEvent[]; open(): number } {
  const opened: TunnelEvent[] = [];
  const closed: TunnelEvent[] = [];
  const mine = (message: unknown): message is TunnelEvent => (message as TunnelEvent).ctx.conn.localPort === proxyPort;
  const onOpen = (message: unknown): void => { if (mine(message)) opened.push(message); };
  const onClose = (message: unknown): void => { if (mine(message)) closed.push(message); };
  subscribe('sluice:tunnel:open', onOpen);
  subscribe('sluice:tunnel:close', onClose);
  t.after(() => {
    unsubscribe('sluice:tunnel:open', onOpen);
    unsubscribe('sluice:tunnel:close', onClose);
  });
  return { opened, closed, open: () => opened.length - closed.length };
}

/** The tunnel-open event whose client is `socket` (matched by the client's port). */
export function waitForTunnelOf(events: { opened: TunnelEvent[] }, socket: Socket, timeoutMs = WAIT_MS): Promise<TunnelEvent> {
  return waitFor(() => events.opened.find((e) => e.ctx.conn.remotePort === socket.localPort), {
    timeoutMs, what: `the tunnel of client port ${socket.localPort ?? '?'}`,
  });
}

/** Every complete frame in `bytes`, which must hold whole frames only (a relayed stream, say). */
export function framesOf(bytes: Buffer): Frame[] {
  const parser = new FrameParser();
  parser.push(bytes);
  const out: Frame[] = [];
  for (let f = parser.next(); f !== null; f = parser.next()) {
    assert.equal(f.kind, 'frame', `a protocol error in the relayed stream: ${JSON.stringify(f)}`);
    out.push(f as Frame);
  }
  assert.equal(parser.bufferedBytes, 0, 'the stream ends between two frames');
  return out;
}

/** What {@link streamFrames} writes to: a socket, or an HTTP/2 stream. */
export interface FrameSink {
  write(chunk: Buffer): boolean;
  readonly destroyed: boolean;
  readonly writableLength: number;
}

/**
 * Streams binary frames from `talker`, small and large alternately (the large ones over the
 * addon's splice minimum), in bounded batches every 2 ms while its buffer is not full, until
 * `stop()` (or the test's end). `sent` holds every frame written, in order. The batches are bounded
 * because a proxy that reads and drops (going away) takes whatever comes at once.
 */
export function streamFrames(t: AfterHook, talker: FrameSink, frame: (opcode: number, payload: Buffer) => Buffer): { sent: Buffer[]; stop(): void } {
  const sent: Buffer[] = [];
  let n = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < 16 && !talker.destroyed && talker.writableLength < 256 * 1024; i++) {
      const f = frame(Opcode.BINARY, Buffer.alloc(n % 3 === 0 ? 40_000 : 300, n & 0xff));
      n++;
      sent.push(f);
      talker.write(f);
    }
  }, 2);
  const stop = (): void => clearInterval(timer);
  t.after(stop);
  return { sent, stop };
}

/**
 * Checks what a side received up to its end when its tunnel went away: a prefix of `sent` that
 * ends between two frames (the frame in flight completed, nothing lost or reordered), then one
 * close frame 1001, masked exactly when it goes to the upstream (RFC 6455 5.1).
 */
export function assertRelayedThenGoingAway(got: Buffer, sent: readonly Buffer[], toUpstream: boolean): void {
  const frames = framesOf(got);
  const close = frames.at(-1);
  assert.equal(close?.opcode, Opcode.CLOSE, 'the stream ends with a close frame');
  assert.equal(close.payload.readUInt16BE(0), 1001);
  assert.equal(close.masked, toUpstream, 'masked toward the upstream only');
  const relayed = got.subarray(0, got.length - (2 + close.payload.length + (close.masked ? 4 : 0)));
  assert.ok(relayed.equals(Buffer.concat(sent).subarray(0, relayed.length)), 'every relayed byte, in order, up to a frame boundary');
}

/**
 * The half-close race: `reader` ends its side of the tunnel first and then reads slowly; `writer`,
 * once that FIN has crossed, sends `frames` back to back and ends too, so its FIN reaches the proxy
 * while bytes sent before it still wait there for the slow reader. Every byte `reader` got before
 * its EOF. Sockets or HTTP/2 streams (whose pausing holds back WINDOW_UPDATE) alike.
 */
export async function finFirstThenReadSlowly(reader: Duplex, writer: Duplex, frames: readonly Buffer[]): Promise<Buffer> {
  reader.pause();
  reader.end();
  assert.equal((await readToEnd(writer, WAIT_MS)).length, 0, 'the first FIN crosses on its own');
  let handedOver = false;
  for (const f of frames) writer.write(f);
  writer.end(() => { handedOver = true; });
  // About 1 ms of reading every 15 ms, until a while after the writer's last byte and FIN are in
  // its kernel; then at full speed.
  const recorder = recorderFor(reader);
  const deadline = Date.now() + WAIT_MS;
  for (let after = 0; after < 20 && !recorder.ended && !recorder.closed && Date.now() < deadline;) {
    reader.resume();
    await delay(1);
    reader.pause();
    await delay(15);
    if (handedOver) after++;
  }
  reader.resume();
  const got = await readToEnd(reader, WAIT_MS);
  assert.equal(recorder.error, null, 'a clean EOF, not a reset');
  return got;
}
