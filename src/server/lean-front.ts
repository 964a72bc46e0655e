/**
 * The lean HTTP/1.1 front end: it takes the first packet of each connection (plain, or TLS once
 * decrypted) before Node's HTTP server sees it. A WebSocket handshake (any request Node would give
 * its `'upgrade'` listener) whose whole head is in that packet goes straight from the parsed head
 * to the upgrade front end (front/h1-upgrade.ts): no IncomingMessage, no Node parser from the
 * pool, no consume/unconsume of the socket, no `'upgrade'` dispatch. Every other connection is
 * handed to Node's server unchanged: its first packet is put back (`unshift`) and Node's own
 * `'connection'` listener runs, as if it had run on accept, so keep-alive, pipelining, timeouts,
 * Expect, every refusal of a malformed head and every later request on the connection stay
 * Node's (a plain request, a head split over packets, an HTTP/2 preface, a parse error...).
 *
 * Until the first packet, the connection is timed by client_header_timeout here (Node's timer
 * starts at the handover) and closed by a graceful shutdown like an idle one.
 *
 * `SLUICE_FRONT=node` turns it off (every connection goes to Node's server from the start); the
 * test runner's `node-front` pass runs the HTTP/1.1 suites that way (scripts/test.mjs).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { LEAN_PARSER_AVAILABLE, parseUpgradeHead } from '../proxy/front/h1-head-parser.js';
import type { LeanHead } from '../proxy/front/h1-head-parser.js';

/** Whether connections go through the lean front end: where this Node has the parser, and unless SLUICE_FRONT=node. */
export function leanFrontEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return LEAN_PARSER_AVAILABLE && env['SLUICE_FRONT'] !== 'node';
}

/**
 * Connections the lean front end took (an upgrade read here) and handed to Node's server, over
 * the process's life: the test suites check which front end answered.
 */
export const leanFrontCounts = { taken: 0, handedOver: 0 };

type ConnectionListener = (this: Server, socket: Socket) => void;

/** Called for an upgrade request the lean front end read: `head` is what came after the request head. */
export type LeanUpgrade = (req: LeanHead, socket: Socket, head: Buffer) => void;

const kFront = Symbol('sluice.leanFront');

type WaitingSocket = Socket & { [kFront]?: LeanFront | undefined };

/** Node's error for a head that did not arrive within headersTimeout; the server's clientError handler logs and closes. */
function headerTimeoutError(): Error {
  return Object.assign(new Error('Request Timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
}

/** The lean front end of one Node HTTP server (one bind). */
export class LeanFront {
  readonly #server: Server;
  readonly #nodeListener: ConnectionListener;
  readonly #handedOver: (socket: Socket) => void;
  readonly #onUpgrade: LeanUpgrade;
  /** Connections whose first packet has not arrived. */
  readonly #waiting = new Set<Socket>();

  /**
   * Takes `server`'s connections: Node's own `'connection'` listener (registered by the Server
   * constructor, the one listener a new server has) is removed and called for the connections
   * handed over, followed by `handedOver`. Null where the server does not have that shape.
   */
  static take(server: Server, handedOver: (socket: Socket) => void, onUpgrade: LeanUpgrade): LeanFront | null {
    const listeners = server.listeners('connection');
    if (listeners.length !== 1 || typeof listeners[0] !== 'function') return null;
    const nodeListener = listeners[0] as ConnectionListener;
    server.removeListener('connection', nodeListener);
    const front = new LeanFront(server, nodeListener, handedOver, onUpgrade);
    server.on('connection', (socket: Socket) => front.accept(socket));
    return front;
  }

  private constructor(server: Server, nodeListener: ConnectionListener, handedOver: (socket: Socket) => void, onUpgrade: LeanUpgrade) {
    this.#server = server;
    this.#nodeListener = nodeListener;
    this.#handedOver = handedOver;
    this.#onUpgrade = onUpgrade;
  }

  accept(socket: Socket): void {
    const s = socket as WaitingSocket;
    s[kFront] = this;
    this.#waiting.add(socket);
    socket.on('error', leanOnError);
    socket.on('close', leanOnClose);
    socket.on('end', leanOnEnd);
    socket.on('data', leanOnData);
    const timeout = this.#server.headersTimeout;
    if (timeout > 0) {
      socket.setTimeout(timeout);
      socket.on('timeout', leanOnTimeout);
    }
  }

  /** Graceful shutdown: a connection that sent nothing yet is idle (Node's closeIdleConnections closes its own). */
  closeIdle(): void {
    for (const s of this.#waiting) s.destroy();
  }

  /** @internal the first packet: an upgrade taken here, or everything to Node's server. */
  first(socket: Socket, packet: Buffer): void {
    this.#release(socket);
    // Only a packet that mentions an upgrade is parsed here; any other goes to Node unparsed.
    const head = packet.indexOf('pgrade') !== -1 || packet.indexOf('PGRADE') !== -1
      ? parseUpgradeHead(packet, socket, (this.#server as Server & { maxHeaderSize?: number }).maxHeaderSize ?? 0)
      : null;
    if (head === null) {
      leanFrontCounts.handedOver++;
      socket.pause();
      socket.unshift(packet);
      this.#handOver(socket);
      socket.resume();
      return;
    }
    leanFrontCounts.taken++;
    // As Node's server leaves an upgraded socket: not flowing, until the front end reads it.
    (socket as { readableFlowing: boolean | null }).readableFlowing = null;
    this.#onUpgrade(head, socket, head.headLength === packet.length ? EMPTY : packet.subarray(head.headLength));
  }

  /** @internal client_header_timeout before the first packet: as Node's server reports it (its clientError). */
  timedOut(socket: Socket): void {
    this.#release(socket);
    this.#server.emit('clientError', headerTimeoutError(), socket);
  }

  /** @internal */
  gone(socket: Socket): void {
    this.#release(socket);
  }

  /**
   * @internal The client ended its side before sending anything: the server's sockets are
   * half-open (Node's HTTP server allows it), so this side ends too, as Node's server does.
   */
  ended(socket: Socket): void {
    this.#release(socket);
    socket.end();
  }

  #handOver(socket: Socket): void {
    this.#nodeListener.call(this.#server, socket);
    this.#handedOver(socket);
  }

  #release(socket: Socket): void {
    const s = socket as WaitingSocket;
    s[kFront] = undefined;
    this.#waiting.delete(socket);
    socket.removeListener('data', leanOnData);
    socket.removeListener('close', leanOnClose);
    socket.removeListener('end', leanOnEnd);
    socket.removeListener('error', leanOnError);
    socket.removeListener('timeout', leanOnTimeout);
    socket.setTimeout(0);
  }
}

const EMPTY = Buffer.alloc(0);

function leanOnData(this: WaitingSocket, packet: Buffer): void {
  this[kFront]?.first(this, packet);
}

function leanOnTimeout(this: WaitingSocket): void {
  this[kFront]?.timedOut(this);
}

function leanOnEnd(this: WaitingSocket): void {
  this[kFront]?.ended(this);
}

function leanOnClose(this: WaitingSocket): void {
  this[kFront]?.gone(this);
}

function leanOnError(this: WaitingSocket): void {
  // A reset before the first packet: nothing to answer; 'close' follows.
  this.destroy();
}
