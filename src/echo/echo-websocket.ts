import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode, parseClosePayload } from '../websocket/close-codes.js';
import { FrameParser } from '../websocket/frame-parser.js';
import { encodeClose, encodeFrameHeader, encodePong, encodeText } from '../websocket/frame-writer.js';
import { checkClientHandshake, serverHandshakeResponse } from '../websocket/handshake.js';
import { MessageAssembler } from '../websocket/message-assembler.js';
import { Opcode } from '../websocket/opcodes.js';
import { wsProtocolError, type WsProtocolError } from '../websocket/protocol-error.js';

/** Largest message the echo backend takes (one frame or reassembled): 64 MiB. */
export const ECHO_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * How long a session waits, once its close frame is sent, for the peer to finish the closing
 * handshake and close TCP before it destroys the socket.
 */
export const ECHO_CLOSE_TIMEOUT_MS = 1000;

/** Options for {@link acceptEchoUpgrade}. */
export interface EchoUpgradeOptions {
  /** Backend id: sent in `X-Echo-Id` on the 101 and in the whoami message. */
  id: string;
  /**
   * Largest accepted message in bytes; bigger ones are closed with 1009.
   * @default ECHO_MAX_MESSAGE_BYTES (64 MiB)
   */
  maxMessageBytes?: number;
}

const sessions = new WeakMap<Duplex, EchoSession>();

/**
 * One accepted WebSocket connection that echoes. Text stays text, binary stays binary, fragmented
 * input comes back as one message, pings get pongs, a close gets a close with the same code and
 * reason. Protocol errors get a close with the matching code (1002, 1007, 1009). A client that
 * half-closes or resets is handled without throwing.
 */
export class EchoSession {
  readonly socket: Duplex;
  /** Resolves once the socket has closed, however that happened. */
  readonly closed: Promise<void>;
  /** Selected subprotocol, or null. */
  readonly protocol: string | null;
  #parser: FrameParser;
  #assembler: MessageAssembler;
  #closeSent = false;
  #inputDone = false;
  #closeTimer: NodeJS.Timeout | null = null;
  #resolveClosed!: () => void;

  constructor(socket: Duplex, protocol: string | null, maxMessageBytes: number) {
    this.socket = socket;
    this.protocol = protocol;
    this.#parser = new FrameParser({ expectMasked: true, maxPayload: maxMessageBytes });
    this.#assembler = new MessageAssembler({ maxMessageSize: maxMessageBytes });
    this.closed = new Promise((resolve) => { this.#resolveClosed = resolve; });
  }

  /** Whether this side has sent its close frame. */
  get closeSent(): boolean {
    return this.#closeSent;
  }

  /**
   * Starts a graceful close with 1001 (going away), as a server shutting down does (RFC 6455
   * section 7.4.1); the socket is destroyed if the peer has not finished within
   * {@link ECHO_CLOSE_TIMEOUT_MS}. Idempotent.
   */
  goingAway(): void {
    if (this.#closeSent || this.socket.destroyed) return;
    this.#sendClose(encodeClose(CloseCode.GOING_AWAY, 'echo server shutting down'));
  }

  /** Destroys the socket at once. Idempotent. */
  destroy(): void {
    this.socket.destroy();
  }

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.#inputDone) return;
    for (const frame of this.#parser.feed(chunk)) {
      if (frame.kind === 'error') return this.#fail(frame);
      // No extension is ever negotiated, so any RSV bit is an error (RFC 6455 section 5.2).
      if (frame.rsv !== 0) return this.#fail(wsProtocolError(1002, 'RSV bits set without a negotiated extension'));
      const out = this.#assembler.push(frame);
      if (out === null) continue;
      if (out.kind === 'error') return this.#fail(out);
      if (out.kind === 'message') {
        this.#write(encodeFrameHeader({ fin: true, rsv: 0, opcode: out.opcode, payloadLength: out.data.length, maskKey: null }), out.data);
        continue;
      }
      if (out.opcode === Opcode.PING) {
        this.#write(encodePong(out.payload));
      } else if (out.opcode === Opcode.CLOSE) {
        return this.#onCloseFrame(out.payload);
      }
    }
    // Echoing into a full socket: stop reading until it drains (socketOnDrain resumes).
    if (this.socket.writableNeedDrain) this.socket.pause();
  }

  /** @internal The client sent FIN: everything it sent is echoed already, so finish our side too. */
  onEnd(): void {
    this.#inputDone = true;
    if (!this.socket.writableEnded) this.socket.end();
    this.#armCloseTimer();
  }

  /** @internal */
  onClose(): void {
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#closeTimer = null;
    this.#inputDone = true;
    this.#resolveClosed();
  }

  #onCloseFrame(payload: Buffer): void {
    const close = parseClosePayload(payload);
    if (close.kind === 'error') return this.#fail(close);
    this.#inputDone = true;
    if (!this.#closeSent) {
      // Echo the code and reason (RFC 6455 section 5.5.1); an empty close gets an empty close.
      this.#sendClose(close.code === CloseCode.NO_STATUS ? encodeClose() : encodeClose(close.code, close.reason));
    }
    // Both close frames have crossed: the server closes TCP first (RFC 6455 section 7.1.1).
    if (!this.socket.writableEnded) this.socket.end();
    this.#armCloseTimer();
  }

  #fail(error: WsProtocolError): void {
    this.#inputDone = true;
    if (!this.#closeSent) this.#sendClose(encodeClose(error.closeCode, error.reason));
    if (!this.socket.writableEnded) this.socket.end();
    this.#armCloseTimer();
  }

  #sendClose(frame: Buffer): void {
    this.#closeSent = true;
    this.#write(frame);
    this.#armCloseTimer();
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== null || this.socket.destroyed) return;
    this.#closeTimer = setTimeout(destroySocket, ECHO_CLOSE_TIMEOUT_MS, this.socket);
    this.#closeTimer.unref();
  }

  #write(first: Buffer, second?: Buffer): void {
    const socket = this.socket;
    if (socket.writableEnded || socket.destroyed) return;
    if (second === undefined) {
      socket.write(first);
      return;
    }
    socket.cork();
    socket.write(first);
    socket.write(second);
    socket.uncork();
  }
}

/**
 * Handles an HTTP upgrade for the echo backend. A valid WebSocket handshake (RFC 6455 section
 * 4.2.1) gets a 101 with `Sec-WebSocket-Accept`, the first offered subprotocol (if any), no
 * extensions, and `X-Echo-Id: <id>`; anything else gets a 400 with a short text and the socket is
 * closed. Bytes that came with the request (`head`) are processed as frames.
 *
 * On open the session sends nothing, except: when the request path is `/whoami` or the query has
 * `whoami` (`/room?whoami`), it sends one text message `{"id":"<id>"}` in the same write as the 101,
 * so demos can see which backend answered and tests get server bytes right behind the 101.
 *
 * @returns the session, or null when the handshake was refused.
 */
export function acceptEchoUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: EchoUpgradeOptions,
): EchoSession | null {
  socket.on('error', socketOnError);
  const check = checkClientHandshake(req.method, req.headersDistinct);
  if (!check.ok) {
    const body = `${check.reason}\n`;
    let response = `HTTP/1.1 ${check.statusCode} Bad Request\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n';
    for (const [name, value] of check.headers) response += `${name}: ${value}\r\n`;
    socket.end(`${response}\r\n${body}`);
    setTimeout(destroySocket, ECHO_CLOSE_TIMEOUT_MS, socket).unref();
    return null;
  }

  const protocol = check.protocols[0] ?? null;
  const session = new EchoSession(socket, protocol, options.maxMessageBytes ?? ECHO_MAX_MESSAGE_BYTES);
  sessions.set(socket, session);
  if (socket instanceof Socket) {
    socket.setNoDelay(true);
    socket.setTimeout(0);
  }
  socket.on('data', socketOnData);
  socket.on('end', socketOnEnd);
  socket.on('close', socketOnClose);
  socket.on('drain', socketOnDrain);

  const response = Buffer.from(serverHandshakeResponse(check.key, { protocol, extraHeaders: [['X-Echo-Id', options.id]] }), 'latin1');
  socket.write(wantsWhoami(req.url) ? Buffer.concat([response, encodeText(JSON.stringify({ id: options.id }))]) : response);
  if (head.length > 0) session.onData(head);
  return session;
}

/** True for `/whoami` (any query) or any path whose query has a `whoami` parameter. */
export function wantsWhoami(url: string | undefined): boolean {
  const target = new URL(url ?? '/', 'http://echo.invalid');
  return target.pathname === '/whoami' || target.searchParams.has('whoami');
}

function socketOnData(this: Duplex, chunk: Buffer): void {
  sessions.get(this)?.onData(chunk);
}

function socketOnEnd(this: Duplex): void {
  sessions.get(this)?.onEnd();
}

function socketOnClose(this: Duplex): void {
  sessions.get(this)?.onClose();
}

function socketOnDrain(this: Duplex): void {
  this.resume();
}

function socketOnError(this: Duplex): void {
  // A reset or a write after the peer left: nothing to report, just release the socket.
  this.destroy();
}

function destroySocket(socket: Duplex): void {
  socket.destroy();
}
