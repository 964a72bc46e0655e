import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { FrameParser, type Frame } from '../../src/websocket/frame-parser.js';
import { encodeFrame, type MaskOption } from '../../src/websocket/frame-writer.js';
import { recorderFor } from './byte-recorder.js';
import { DEFAULT_WAIT_MS, withTimeout } from './wait.js';

/** The sample key of RFC 6455 section 1.3, the default key of {@link wsHandshakeRequest}. */
export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
/** `Sec-WebSocket-Accept` for {@link SAMPLE_KEY}. */
export const SAMPLE_ACCEPT = acceptKey(SAMPLE_KEY);

/** What to wait for: a string or bytes that must appear, or a test over the unread bytes. */
export type Until = string | Buffer | ((pending: Buffer) => boolean);

/** Connection options shared by the raw client helpers. */
export interface RawConnectOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default DEFAULT_WAIT_MS (5000) */
  timeoutMs?: number;
  /** Keep this side open after the server's FIN (a client that lingers, or never closes). @default false */
  allowHalfOpen?: boolean;
}

/**
 * Opens a TCP connection and attaches a recorder (see `recorderFor`) so no byte the server sends is
 * missed, and socket errors are recorded instead of crashing the test. Rejects if the connection
 * fails or takes longer than `timeoutMs`.
 */
export async function rawConnect(port: number, options: RawConnectOptions = {}): Promise<Socket> {
  const socket = connect({ port, host: options.host ?? '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
  recorderFor(socket);
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  try {
    await withTimeout(connected, options.timeoutMs ?? DEFAULT_WAIT_MS, `a connection to port ${port}`);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  socket.setNoDelay(true);
  return socket;
}

function matcher(until: Until): (pending: Buffer) => boolean {
  if (typeof until === 'function') return until;
  const needle = typeof until === 'string' ? Buffer.from(until, 'latin1') : until;
  return (pending) => pending.includes(needle);
}

function describe(until: Until): string {
  if (typeof until === 'function') return 'the predicate';
  return JSON.stringify(typeof until === 'string' ? until : until.toString('latin1'));
}

function preview(bytes: Buffer): string {
  const text = JSON.stringify(bytes.subarray(0, 200).toString('latin1'));
  return bytes.length > 200 ? `${text}... (${bytes.length} bytes)` : text;
}

/**
 * Waits until the socket's unread bytes satisfy `until` and resolves with them WITHOUT marking them
 * read (a view). Rejects if the connection ends or closes first, or after `timeoutMs`, with the
 * bytes seen in the message. Most tests want {@link readUntil}.
 */
export async function waitForBytes(socket: Duplex, until: Until, timeoutMs: number = DEFAULT_WAIT_MS): Promise<Buffer> {
  const recorder = recorderFor(socket);
  const test = matcher(until);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (test(recorder.pending)) return recorder.pending;
    if (recorder.closed || recorder.ended) {
      const why = recorder.error === null ? 'closed' : `failed (${recorder.error.message})`;
      throw new Error(`connection ${why} before ${describe(until)} arrived; unread bytes: ${preview(recorder.pending)}`);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe(until)}; unread bytes: ${preview(recorder.pending)}`);
    }
    await withTimeout(recorder.changed(), left, describe(until)).catch(() => undefined);
  }
}

/**
 * Waits until the socket's unread bytes satisfy `until` (contain the string, or make the predicate
 * true), then returns ALL unread bytes (possibly more than the match) and marks them read; the
 * next read starts after them. Rejects if the connection ends or closes first, or after
 * `timeoutMs`, with the bytes seen in the message.
 *
 * @example const head = parseResponseHead(await readUntil(socket, '\r\n\r\n', 2000));
 */
export async function readUntil(socket: Duplex, until: Until, timeoutMs: number = DEFAULT_WAIT_MS): Promise<Buffer> {
  await waitForBytes(socket, until, timeoutMs);
  return recorderFor(socket).consume();
}

/**
 * Waits until the peer ends or closes the connection and returns every unread byte (even after a
 * reset: check `recorderFor(socket).error` if that matters). Rejects after `timeoutMs`.
 */
export async function readToEnd(socket: Duplex, timeoutMs: number = DEFAULT_WAIT_MS): Promise<Buffer> {
  const recorder = recorderFor(socket);
  const deadline = Date.now() + timeoutMs;
  while (!recorder.ended && !recorder.closed) {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for the connection to end; unread bytes: ${preview(recorder.pending)}`);
    }
    await withTimeout(recorder.changed(), left, 'the end').catch(() => undefined);
  }
  return recorder.consume();
}

/**
 * Waits until the socket has fully closed (both directions, or reset, or destroyed).
 * Rejects after `timeoutMs`.
 */
export async function waitForClose(socket: Duplex, timeoutMs: number = DEFAULT_WAIT_MS): Promise<void> {
  const recorder = recorderFor(socket);
  const deadline = Date.now() + timeoutMs;
  while (!recorder.closed && !socket.destroyed) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for the socket to close`);
    await withTimeout(recorder.changed(), left, 'the close').catch(() => undefined);
  }
}

/** A parsed HTTP/1.x response head. */
export interface ResponseHead {
  statusCode: number;
  /** The first line without CRLF, e.g. `HTTP/1.1 101 Switching Protocols`. */
  statusLine: string;
  /** `HTTP/1.1` */
  httpVersion: string;
  reason: string;
  /** Every header line in order, names as sent, values trimmed; repeated headers stay separate. */
  headers: [string, string][];
  /** Length of the head including the blank line. */
  headLength: number;
  /** The bytes after the head (body, or frames after a 101). */
  rest: Buffer;
}

/** Like {@link parseResponseHead} but returns null while the head is incomplete. */
export function tryParseResponseHead(buf: Buffer): ResponseHead | null {
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = lines[0] ?? '';
  const match = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(statusLine);
  if (match === null) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header line: ${JSON.stringify(line)}`);
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return {
    statusCode: Number(match[2]),
    statusLine,
    httpVersion: match[1]!,
    reason: match[3] ?? '',
    headers,
    headLength: end + 4,
    rest: buf.subarray(end + 4),
  };
}

/**
 * Parses the response head at the start of `buf`. Throws (failing the test with the bytes shown)
 * when there is no complete head or the status line is not HTTP.
 */
export function parseResponseHead(buf: Buffer): ResponseHead {
  const head = tryParseResponseHead(buf);
  if (head === null) throw new Error(`no complete response head in ${buf.length} bytes: ${preview(buf)}`);
  return head;
}

/** All values of header `name` (case-insensitive), in order. */
export function headerValues(head: Pick<ResponseHead, 'headers'>, name: string): string[] {
  const wanted = name.toLowerCase();
  return head.headers.filter(([n]) => n.toLowerCase() === wanted).map(([, v]) => v);
}

/** The value of header `name` (repeated lines joined by ", "), or undefined when absent. */
export function headerValue(head: Pick<ResponseHead, 'headers'>, name: string): string | undefined {
  const values = headerValues(head, name);
  return values.length === 0 ? undefined : values.join(', ');
}

/**
 * If `buf` starts with one complete response, its total length and decoded body; else null (more
 * bytes needed, or the body is delimited by the close). Interim 1xx responses other than 101 are
 * skipped; 101, 204, 304 and answers to HEAD end at the head.
 */
export function completeResponse(buf: Buffer, requestMethod = 'GET'): { length: number; head: ResponseHead; body: Buffer } | null {
  let offset = 0;
  for (;;) {
    const head = tryParseResponseHead(buf.subarray(offset));
    if (head === null) return null;
    const bodyStart = offset + head.headLength;
    const code = head.statusCode;
    if (code >= 100 && code < 200 && code !== 101) {
      offset = bodyStart;
      continue;
    }
    if (code === 101 || code === 204 || code === 304 || requestMethod === 'HEAD') {
      return { length: bodyStart, head, body: Buffer.alloc(0) };
    }
    const te = headerValue(head, 'transfer-encoding');
    if (te !== undefined && /(^|,)\s*chunked\s*$/i.test(te)) {
      const decoded = decodeChunked(buf.subarray(bodyStart));
      return decoded === null ? null : { length: bodyStart + decoded.length, head, body: decoded.body };
    }
    const cl = headerValue(head, 'content-length');
    if (cl !== undefined) {
      const length = Number(cl);
      if (buf.length - bodyStart < length) return null;
      return { length: bodyStart + length, head, body: buf.subarray(bodyStart, bodyStart + length) };
    }
    return null;
  }
}

/** Decodes a complete chunked body at the start of `buf` (RFC 9112 section 7.1); null if incomplete. */
export function decodeChunked(buf: Buffer): { length: number; body: Buffer } | null {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', offset, 'latin1');
    if (lineEnd < 0) return null;
    const size = parseInt(buf.subarray(offset, lineEnd).toString('latin1').split(';')[0]!.trim(), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size line at byte ${offset}: ${preview(buf.subarray(offset))}`);
    offset = lineEnd + 2;
    if (size === 0) {
      // Trailer section: lines until an empty one.
      for (;;) {
        const end = buf.indexOf('\r\n', offset, 'latin1');
        if (end < 0) return null;
        const empty = end === offset;
        offset = end + 2;
        if (empty) return { length: offset, body: Buffer.concat(parts) };
      }
    }
    if (buf.length < offset + size + 2) return null;
    parts.push(buf.subarray(offset, offset + size));
    offset += size + 2;
  }
}

/** Options for {@link rawRequest}. */
export interface RawRequestOptions extends RawConnectOptions {
  /**
   * When to stop reading: `'response'` (one complete HTTP response, or the close), `'close'` (the
   * server ends the connection), or an {@link Until}.
   * @default 'response'
   */
  until?: 'response' | 'close' | Until;
  /** Send FIN right after the bytes (a client that half-closes). @default false */
  endAfterWrite?: boolean;
  /** Leave the socket open for more (the caller must destroy it). @default false */
  keepOpen?: boolean;
}

/** What {@link rawRequest} collected. */
export interface RawResponse {
  /** Every byte received. */
  data: Buffer;
  /** The first response head, or null if none arrived complete. */
  head: ResponseHead | null;
  /** The first response's body (de-chunked) when complete; otherwise the bytes after the head. */
  body: Buffer;
  /** Whether the server had closed (or ended) the connection by the time reading stopped. */
  closed: boolean;
  /** The socket (already destroyed unless `keepOpen`). */
  socket: Socket;
}

/**
 * Connects to 127.0.0.1:`port`, writes `bytes` exactly as given (one write), and collects the answer
 * (see {@link RawRequestOptions.until}). A server that closes early is not an error: the result says
 * what arrived. Rejects only when the connection fails or the wait exceeds `timeoutMs`.
 *
 * @example const res = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'); assert.equal(res.head?.statusCode, 200);
 */
export async function rawRequest(port: number, bytes: string | Buffer, options: RawRequestOptions = {}): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
  const socket = await rawConnect(port, options);
  const recorder = recorderFor(socket);
  const payload = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  const method = /^([A-Z]+) /.exec(payload.subarray(0, 16).toString('latin1'))?.[1] ?? 'GET';
  try {
    if (options.endAfterWrite === true) socket.end(payload);
    else socket.write(payload);
    const until = options.until ?? 'response';
    if (until === 'close') {
      await readToEnd(socket, timeoutMs);
    } else {
      const test = until === 'response' ? (b: Buffer) => completeResponse(b, method) !== null : matcher(until);
      await readUntil(socket, (b) => test(b), timeoutMs).catch((error: unknown) => {
        if (!(recorder.closed || recorder.ended)) throw error;
      });
    }
    const data = recorder.all;
    recorder.consume();
    const complete = completeResponse(data, method);
    const head = complete?.head ?? tryParseResponseHead(data);
    return {
      data,
      head,
      body: complete?.body ?? head?.rest ?? Buffer.alloc(0),
      closed: recorder.closed || recorder.ended,
      socket,
    };
  } finally {
    if (options.keepOpen !== true) socket.destroy();
  }
}

/** What {@link sendRequest} resolves with. */
export interface Answer {
  status: number;
  head: ResponseHead;
  /** The body as UTF-8 text. */
  body: string;
  /** The body's bytes. */
  bytes: Buffer;
  /** Whether the server had closed the connection when the answer was complete. */
  closed: boolean;
}

/** Options for {@link sendRequest}. */
export interface SendRequestOptions extends RawConnectOptions {
  /** @default 'GET' */
  method?: string;
  /** A body, sent after a `Content-Length` line (also when it is empty). @default none */
  body?: string;
}

/**
 * One HTTP/1.1 request on its own connection: `METHOD TARGET HTTP/1.1`, the header lines exactly
 * as given, `Connection: close`, then `Content-Length` and the body if there is one. Fails (an
 * assertion naming the bytes that came back) when no complete response head arrives.
 *
 * @example const res = await sendRequest(proxy.port, '/a?b=1', ['Host: a.test', 'Cookie: c=1']);
 */
export async function sendRequest(port: number, target: string, headers: readonly string[] = ['Host: localhost'], options: SendRequestOptions = {}): Promise<Answer> {
  const method = options.method ?? 'GET';
  const lines = [`${method} ${target} HTTP/1.1`, ...headers, 'Connection: close'];
  if (options.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(options.body)}`);
  const bytes = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(options.body ?? '', 'utf8')]);
  const res = await rawRequest(port, bytes, options);
  assert.ok(res.head, `a response to ${method} ${target}; got ${JSON.stringify(res.data.toString('latin1'))}`);
  return { status: res.head.statusCode, head: res.head, body: res.body.toString('utf8'), bytes: res.body, closed: res.closed };
}

/** Options for {@link wsHandshakeRequest}. */
export interface WsHandshakeOptions {
  /** @default '/' */
  path?: string;
  /** The Host header value. @default '127.0.0.1' */
  host?: string;
  /** @default SAMPLE_KEY (RFC 6455's sample, so the expected accept is SAMPLE_ACCEPT) */
  key?: string;
  /** @default 'GET' */
  method?: string;
  /** @default '13' */
  version?: string;
  /** Header lines appended in order after the standard ones. */
  extraHeaders?: readonly (readonly [string, string])[] | Readonly<Record<string, string>>;
  /** Standard headers to leave out (case-insensitive), e.g. `['Sec-WebSocket-Key']`. */
  omit?: readonly string[];
}

/**
 * The exact text of a WebSocket upgrade request:
 * `GET PATH HTTP/1.1`, `Host`, `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Key`,
 * `Sec-WebSocket-Version: 13`, then `extraHeaders`, then the blank line.
 */
export function wsHandshakeRequest(options: WsHandshakeOptions = {}): string {
  const omit = new Set((options.omit ?? []).map((n) => n.toLowerCase()));
  const standard: [string, string][] = [
    ['Host', options.host ?? '127.0.0.1'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', options.key ?? SAMPLE_KEY],
    ['Sec-WebSocket-Version', options.version ?? '13'],
  ];
  const extra = options.extraHeaders === undefined
    ? []
    : Array.isArray(options.extraHeaders)
      ? options.extraHeaders as readonly (readonly [string, string])[]
      : Object.entries(options.extraHeaders);
  let text = `${options.method ?? 'GET'} ${options.path ?? '/'} HTTP/1.1\r\n`;
  for (const [name, value] of standard) if (!omit.has(name.toLowerCase())) text += `${name}: ${value}\r\n`;
  for (const [name, value] of extra) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

/** Options for {@link maskedFrame} and {@link serverFrame}. */
export interface FrameOptions {
  /** @default true */
  fin?: boolean;
  /** @default 0 */
  rsv?: number;
}

/**
 * A client frame as a browser sends it: masked with a random key (or `maskKey`), payload as given.
 * Built with the project codec (`src/websocket`), which encodes even forbidden frames on purpose.
 */
export function maskedFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0), options: FrameOptions & { maskKey?: Buffer } = {}): Buffer {
  const mask: MaskOption = options.maskKey ?? true;
  return encodeFrame({ opcode, payload, mask, fin: options.fin ?? true, rsv: options.rsv ?? 0 });
}

/** A server frame: unmasked, for raw backends. */
export function serverFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0), options: FrameOptions = {}): Buffer {
  return encodeFrame({ opcode, payload, fin: options.fin ?? true, rsv: options.rsv ?? 0 });
}

/** Total length of the complete frame at the start of `buf`, or null if more bytes are needed. */
export function frameLength(buf: Buffer): number | null {
  if (buf.length < 2) return null;
  const length7 = buf[1]! & 0x7f;
  const masked = (buf[1]! & 0x80) !== 0;
  const lengthBytes = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const headerLength = 2 + lengthBytes + (masked ? 4 : 0);
  if (buf.length < headerLength) return null;
  let payloadLength = length7;
  if (length7 === 126) payloadLength = buf.readUInt16BE(2);
  if (length7 === 127) payloadLength = buf.readUInt32BE(2) * 2 ** 32 + buf.readUInt32BE(6);
  const total = headerLength + payloadLength;
  return buf.length >= total ? total : null;
}

/**
 * Reads exactly one WebSocket frame from the socket's unread bytes (leaving any later bytes unread)
 * and decodes it, unmasking if needed. Rejects on time-out, on close first, or if the bytes are not
 * a valid frame.
 */
export async function readFrame(socket: Duplex, timeoutMs: number = DEFAULT_WAIT_MS): Promise<Frame> {
  const pending = await waitForBytes(socket, (b) => frameLength(b) !== null, timeoutMs)
    .catch((error: unknown) => { throw new Error(`no complete frame: ${(error as Error).message}`); });
  const bytes = recorderFor(socket).consume(frameLength(pending)!);
  const [result] = new FrameParser({ maxPayload: Number.MAX_SAFE_INTEGER }).feed(bytes);
  if (result === undefined) throw new Error('frame parser returned nothing for a complete frame');
  if (result.kind === 'error') throw new Error(`invalid frame (${result.closeCode}): ${result.reason}`);
  return result;
}

/** A raw WebSocket connection after a successful or refused handshake, see {@link rawWebSocket}. */
export interface RawWebSocket {
  socket: Socket;
  /** The response head; bytes after it stay unread, for {@link readFrame}. */
  head: ResponseHead;
}

/**
 * Connects, sends {@link wsHandshakeRequest}(`options`) plus `earlyBytes` in the same write (to test
 * pipelined frames), reads the response head and returns it with the socket. Bytes after the head
 * (frames sent with the 101, or a refusal's body) stay unread. Does not check the status: assert it.
 * The caller destroys the socket.
 */
export async function rawWebSocket(
  port: number,
  options: WsHandshakeOptions & RawConnectOptions & { earlyBytes?: Buffer } = {},
): Promise<RawWebSocket> {
  const socket = await rawConnect(port, options);
  try {
    const request = Buffer.from(wsHandshakeRequest(options), 'latin1');
    socket.write(options.earlyBytes === undefined ? request : Buffer.concat([request, options.earlyBytes]));
    const head = parseResponseHead(await waitForBytes(socket, '\r\n\r\n', options.timeoutMs ?? DEFAULT_WAIT_MS));
    recorderFor(socket).consume(head.headLength);
    return { socket, head: { ...head, rest: Buffer.from(head.rest) } };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
