/**
 * A small WebSocket client (RFC 6455) on node:net and node:tls, for `sluice client`: the opening
 * handshake, masked frames out, messages in (fragments reassembled, text checked as UTF-8), pings
 * answered, and the close handshake with its code and reason. It is built on Sluice's own frame
 * code (src/websocket) rather than the `ws` package, so the command needs no runtime dependency
 * and runs on Node 20, which has no global WebSocket; no extension (permessage-deflate) is offered.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { isIP } from 'node:net';
import { newKey } from '../websocket/accept-key.js';
import { CloseCode, parseClosePayload } from '../websocket/close-codes.js';
import { FrameParser } from '../websocket/frame-parser.js';
import type { Frame } from '../websocket/frame-parser.js';
import { encodeBinary, encodeClose, encodePing, encodePong, encodeText } from '../websocket/frame-writer.js';
import { checkServerHandshake } from '../websocket/handshake.js';
import type { HeaderBag } from '../websocket/handshake.js';
import { MessageAssembler } from '../websocket/message-assembler.js';
import { Opcode } from '../websocket/opcodes.js';

/** The largest response head accepted before the 101 (nginx's large_client_header_buffers, 4 x 8k). */
const MAX_HEAD_BYTES = 32 * 1024;
/** How long the close handshake may take before the connection is dropped. @default 5000 */
export const CLOSE_WAIT_MS = 5_000;

export interface ClientOptions {
  /** Extra request headers, as [name, value]. */
  readonly headers?: readonly (readonly [string, string])[];
  /** Subprotocols offered (Sec-WebSocket-Protocol). */
  readonly protocols?: readonly string[];
  readonly origin?: string;
  /** PEM of the certificate authorities to trust for wss:// (instead of Node's). */
  readonly ca?: Buffer;
  /** wss:// without checking the server's certificate. */
  readonly insecure?: boolean;
  /** Give up the connection and handshake after this long. @default 10000 */
  readonly timeoutMs?: number;
}

export interface ClientEvents {
  message: [data: Buffer, binary: boolean];
  ping: [data: Buffer];
  pong: [data: Buffer];
  /** The connection is gone: the close code and reason the server sent (1005 none, 1006 no close frame). */
  close: [code: number, reason: string];
  error: [error: Error];
}

/** The target of a ws:// or wss:// URL (http:// and https:// are taken as the same). */
export function parseWsUrl(text: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `ws://${text}`;
  const url = new URL(withScheme);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`not a WebSocket URL: "${text}" (ws:// or wss://)`);
  return url;
}

/** An open WebSocket connection to a server; made by {@link connectWebSocket}. */
export class WsClientConnection extends EventEmitter<ClientEvents> {
  readonly #socket: Socket;
  readonly #parser = new FrameParser({ expectMasked: false });
  readonly #assembler = new MessageAssembler();
  /** The subprotocol the server chose, or null. */
  readonly protocol: string | null;
  #closeSent = false;
  #closeCode: number = CloseCode.ABNORMAL;
  #closeReason = '';
  #closeTimer: NodeJS.Timeout | null = null;

  constructor(socket: Socket, protocol: string | null, rest: Buffer) {
    super();
    this.#socket = socket;
    this.protocol = protocol;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => this.#onClose());
    socket.on('error', (e) => this.emit('error', e));
    socket.on('end', () => socket.end());
    // Bytes that came with the 101 (a greeting) wait until the caller has its listeners on.
    if (rest.length > 0) setImmediate(() => this.#onData(rest));
  }

  get closing(): boolean {
    return this.#closeSent;
  }

  sendText(text: string): void {
    if (!this.#closeSent) this.#socket.write(encodeText(text, true));
  }

  sendBinary(data: Buffer): void {
    if (!this.#closeSent) this.#socket.write(encodeBinary(data, true));
  }

  ping(data: Buffer | string = ''): void {
    if (!this.#closeSent) this.#socket.write(encodePing(data, true));
  }

  /** Starts the close handshake (RFC 6455 7.1.2); the server's close frame and TCP end follow. */
  close(code: number = CloseCode.NORMAL, reason = ''): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#socket.write(encodeClose(code, reason, true));
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), CLOSE_WAIT_MS);
    this.#closeTimer.unref();
  }

  /** Drops the connection without a close handshake. */
  terminate(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    for (const result of this.#parser.feed(chunk)) {
      if (result.kind === 'error') {
        this.#fail(result.closeCode, result.reason);
        return;
      }
      this.#onFrame(result);
    }
  }

  #onFrame(frame: Frame): void {
    const out = this.#assembler.push(frame);
    if (out === null) return;
    if (out.kind === 'error') {
      this.#fail(out.closeCode, out.reason);
      return;
    }
    if (out.kind === 'message') {
      this.emit('message', out.data, out.opcode === Opcode.BINARY);
      return;
    }
    switch (out.opcode) {
      case Opcode.PING:
        if (!this.#closeSent) this.#socket.write(encodePong(out.payload, true));
        this.emit('ping', out.payload);
        return;
      case Opcode.PONG:
        this.emit('pong', out.payload);
        return;
      case Opcode.CLOSE: {
        const close = parseClosePayload(out.payload);
        if (close.kind === 'error') {
          this.#fail(close.closeCode, close.reason);
          return;
        }
        this.#closeCode = close.code;
        this.#closeReason = close.reason;
        // Echo the code back (RFC 6455 5.5.1), then the server closes the TCP connection first.
        if (!this.#closeSent) {
          this.#closeSent = true;
          this.#socket.write(close.code === CloseCode.NO_STATUS ? encodeClose(undefined, '', true) : encodeClose(close.code, '', true));
          this.#closeTimer = setTimeout(() => this.#socket.destroy(), CLOSE_WAIT_MS);
          this.#closeTimer.unref();
        }
        return;
      }
    }
  }

  #fail(code: number, reason: string): void {
    this.emit('error', new Error(`protocol error from the server: ${reason}`));
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#socket.end(encodeClose(code, reason, true));
    }
    this.#socket.destroySoon();
  }

  #onClose(): void {
    if (this.#closeTimer) clearTimeout(this.#closeTimer);
    this.emit('close', this.#closeCode, this.#closeReason);
  }
}

/** What a failed handshake got: the status and head, for the command to show. */
export class HandshakeError extends Error {
  constructor(message: string, readonly status: number | null) {
    super(message);
  }
}

function parseHead(text: string): { status: number; headers: Record<string, string[]> } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) throw new HandshakeError(`not an HTTP response: "${(lines[0] ?? '').slice(0, 80)}"`, null);
  const headers: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    (headers[line.slice(0, colon).trim().toLowerCase()] ??= []).push(line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

/** Connects and runs the opening handshake (RFC 6455 4.1); rejects with a HandshakeError or a socket error. */
export function connectWebSocket(url: URL, options: ClientOptions = {}): Promise<WsClientConnection> {
  const secure = url.protocol === 'wss:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || (secure ? 443 : 80));
  const socket: Socket = secure
    ? tlsConnect({
      host, port, ALPNProtocols: ['http/1.1'],
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(options.ca ? { ca: options.ca } : {}),
      rejectUnauthorized: options.insecure !== true,
    })
    : netConnect({ host, port });
  const key = newKey();
  const lines = [
    `GET ${url.pathname || '/'}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (options.protocols && options.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(', ')}`);
  if (options.origin !== undefined) lines.push(`Origin: ${options.origin}`);
  for (const [name, value] of options.headers ?? []) lines.push(`${name}: ${value}`);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`no answer from ${url.host} within ${(options.timeoutMs ?? 10_000) / 1000}s`)), options.timeoutMs ?? 10_000);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) fail(new HandshakeError('response head too large', null));
        return;
      }
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onEarlyClose);
      clearTimeout(timer);
      let parsed: { status: number; headers: Record<string, string[]> };
      try {
        parsed = parseHead(head.subarray(0, end).toString('latin1'));
      } catch (e) {
        fail(e as Error);
        return;
      }
      if (parsed.status !== 101) {
        fail(new HandshakeError(`Unexpected server response: ${parsed.status}`, parsed.status));
        return;
      }
      const check = checkServerHandshake(key, parsed.status, parsed.headers as HeaderBag, options.protocols ?? []);
      if (!check.ok) {
        fail(new HandshakeError(`bad handshake: ${check.reason}`, parsed.status));
        return;
      }
      resolve(new WsClientConnection(socket, check.protocol, head.subarray(end + 4)));
    };
    const onEarlyClose = (): void => fail(new Error(`connection closed by ${url.host} before the handshake ended`));
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('close', onEarlyClose);
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(`${lines.join('\r\n')}\r\n\r\n`));
  });
}
