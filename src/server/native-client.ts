/**
 * What becomes of a connection the addon accepted (native-accept.ts) on a listener of Sluice's:
 * a complete WebSocket handshake goes to the session with a client that has no net.Socket
 * (front/native-client.ts); everything else becomes a net.Socket for the server's front ends.
 */
import { channel } from 'node:diagnostics_channel';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseRequestHead } from '../proxy/front/h1-head-parser.js';
import { NativeClient, nativeClientCounts } from '../proxy/front/native-client.js';
import type { NativeClientHost } from '../proxy/front/native-client.js';
import type { ConnectionRegistry } from './connections.js';
import { leanFrontCounts } from './lean-front.js';
import type { LeanUpgrade } from './lean-front.js';
import { nativeAcceptor, openAccepted, socketForAccepted } from './native-accept.js';
import type { AcceptedConnection, NativeAcceptor } from './native-accept.js';

/** What a listener gives the connections the addon accepted for it (proxy-server.ts). */
export interface AcceptTarget {
  readonly server: Server;
  readonly registry: ConnectionRegistry;
  /**
   * What the server's `'connection'` listener does before any front end (socket options, the
   * registry): false when worker_connections refused the connection (it is answered).
   */
  register(socket: Socket): boolean;
  /** The upgrade handler the lean front end calls. */
  readonly onUpgrade: LeanUpgrade;
  /** The proxy is shutting down: a connection accepted before the listener closed is closed as idle. */
  closing(): boolean;
}

const EMPTY = Buffer.alloc(0);

/** Announces each handshake's native client (as `net.server.socket` announces accepted sockets; a test watches their collection). */
const clientChannel = channel('sluice:native-client');

/**
 * A connection the addon accepted. A complete WebSocket handshake in origin form runs the upgrade
 * front end with a native client; anything else (a plain request, a head not complete or refused
 * by llhttp, a forward-proxy handshake) is a net.Socket handed to the server's `'connection'`
 * listeners (the registry, the lean front end) with the bytes read first, as libuv's accept would
 * have; client_header_timeout that passed in the addon is the socket's timeout, at once.
 */
export function takeAccepted(t: AcceptTarget, c: AcceptedConnection): void {
  // The acceptor that reported `c` (never null here).
  const acceptor = nativeAcceptor();
  if (t.closing()) {
    // As the lean front end's closeIdle does for a connection waiting for its first request.
    acceptor?.closeAccepted(c);
    return;
  }
  if (c.upgrade && takeHandshake(t, c)) return;
  // Not a handshake after all: the addon's watch ends before libuv takes the descriptor.
  acceptor?.endWatch(c);
  const socket = socketForAccepted(t.server, c.fd, c.head);
  if (c.timedOut) socket.emit('timeout');
}

function takeHandshake(t: AcceptTarget, c: AcceptedConnection): boolean {
  const acceptor = nativeAcceptor();
  const bound = t.server.address() as AddressInfo | null;
  if (acceptor === null || bound === null) return false;
  const local = c.localAddress !== '' ? c.localAddress : bound.address;
  const localPort = c.localAddress !== '' ? c.localPort : bound.port;
  const client = new NativeClient(hostFor(acceptor, t), c.fd, c.remoteAddress, c.remotePort, local, localPort, c.head.length, c.watch);
  const socket = client as unknown as Socket;
  const head = parseRequestHead(c.head, socket, (t.server as Server & { maxHeaderSize?: number }).maxHeaderSize ?? 0);
  if (head === null || !head.upgrade || (head.url ?? '').charCodeAt(0) !== 0x2f) return false;
  if (!t.register(socket)) return true;
  leanFrontCounts.taken++;
  nativeClientCounts.handshakes++;
  if (clientChannel.hasSubscribers) clientChannel.publish({ client });
  t.onUpgrade(head, socket, head.headLength === c.head.length ? EMPTY : c.head.subarray(head.headLength));
  return true;
}

const hosts = new WeakMap<AcceptTarget, NativeClientHost>();

function hostFor(acceptor: NativeAcceptor, t: AcceptTarget): NativeClientHost {
  let host = hosts.get(t);
  if (host === undefined) {
    host = {
      watch: (fd, gone) => acceptor.watch(fd, gone),
      claim: (id, gone) => acceptor.claim(id, gone),
      unwatch: (id) => acceptor.unwatch(id),
      forget: (id) => acceptor.forget(id),
      send: (fd, data) => acceptor.send(fd, data),
      socketFor: (fd, preRead) => openAccepted(t.server, fd, preRead),
      replaced: (from, to) => t.registry.replace(from as unknown as Socket, to),
    };
    hosts.set(t, host);
  }
  return host;
}
