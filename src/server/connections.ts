import type { Socket } from 'node:net';
import type { ProxyStats } from '../observability/stats-collector.js';
import type { ConnInfo } from '../proxy/context/request-context.js';
import { sslInfoOf } from '../proxy/context/ssl-info.js';
import type { ProxyTunnel } from '../proxy/tunnel/tunnel.js';
import type { ProxyProtocolInfo } from './proxy-protocol.js';
import type { ListenerRoutes } from '../routing/router.js';

/** The socket a connection was accepted on: its bind key and the port the config asked for. */
export interface BindInfo {
  readonly key: string;
  readonly configuredPort: number;
  readonly tls: boolean;
}

/** nginx numbers connections across the whole process. */
let nextConnectionId = 1;

/**
 * Bytes the native addon read from a connection before it became a net.Socket (put back with
 * unshift, which socket.bytesRead does not count): a connection's read mark starts below zero
 * by as many, so $bytes_received and "reading" count them as libuv's reads would have been.
 * Kept here, not in a Socket subclass: every accepted socket keeps one shape for Node's streams.
 */
const preRead = new WeakMap<Socket, number>();

/** `socket` starts with `bytes` bytes the addon read (server/native-accept.ts). */
export function notePreRead(socket: Socket, bytes: number): void {
  if (bytes > 0) preRead.set(socket, bytes);
}

/** Where a connection's read mark starts: below zero by what the addon read before the socket. */
function initialReadMark(socket: Socket): number {
  return -(preRead.get(socket) ?? 0);
}

/** "127.0.0.1:8080" / "[::1]:8080", the shape of a listen key. */
export function addressKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Every client connection of one proxy: numbering, the worker_connections cap, open tunnels,
 * nginx's stub_status counters, and the bookkeeping shutdown and reload need.
 */
const NONE_HELD: readonly [number, number] = [0, 0];

function noneHeld(): readonly [number, number] {
  return NONE_HELD;
}

function noop(): void {}

export class ConnectionRegistry {
  readonly sockets = new Set<Socket>();
  readonly tunnels = new Set<ProxyTunnel>();
  readonly rejected = new WeakSet<Socket>();
  /** Tunnels the native addon holds: open connections whose sockets are no longer in `sockets`. */
  nativeTunnels = 0;
  /** Called when a connection closes (its socket or its native tunnel): the proxy server sets it for the workers' load table. */
  released: () => void = noop;
  accepted = 0;
  handled = 0;
  cap: number;
  /** The statistics of the proxy these connections belong to (set by ProxyServer). */
  stats: ProxyStats | null = null;
  readonly #info = new WeakMap<Socket, ConnInfo>();
  readonly #bind = new WeakMap<Socket, BindInfo>();
  /** What a `listen ... proxy_protocol` connection's header said (null: UNKNOWN / LOCAL). */
  readonly proxyProtocol = new WeakMap<Socket, ProxyProtocolInfo | null>();
  /**
   * The last local address a connection had: the connections of a listener share it, so one
   * string serves them all instead of one per connection (which an open tunnel keeps).
   */
  #localAddress = '';

  constructor(cap: number) {
    this.cap = cap;
  }

  /**
   * Connections the native addon accepted and still reads, [waiting, reading] (not in `sockets`
   * yet: server/native-accept.ts); the proxy server sets it.
   */
  addonHeld: () => readonly [number, number] = noneHeld;

  /** Connections in JavaScript's hands: sockets, and tunnels the native addon holds for it. */
  get inHand(): number {
    return this.sockets.size + this.nativeTunnels;
  }

  /** Open client connections, tunnels the native addon holds and connections it reads included. */
  get open(): number {
    const [waiting, reading] = this.addonHeld();
    return this.inHand + waiting + reading;
  }

  /** Registers a new connection; false when worker_connections is reached. */
  accept(socket: Socket, bind: BindInfo): boolean {
    this.accepted++;
    if (this.open >= this.cap) {
      this.rejected.add(socket);
      return false;
    }
    this.handled++;
    this.sockets.add(socket);
    this.#bind.set(socket, bind);
    socket.on('close', () => { // 'close' fires once; no once-wrapper to keep
      this.sockets.delete(socket);
      this.released();
    });
    return true;
  }

  /**
   * A connection's socket changes: a client the addon accepted (front/native-client.ts) becomes a
   * net.Socket. It stays the same connection: its info, bind, refusal and place in `sockets`.
   */
  replace(from: Socket, to: Socket): void {
    const info = this.#info.get(from);
    if (info !== undefined) {
      this.#info.set(to, info);
      // `to` does not count the bytes the addon read for `from`: the mark moves down by as many.
      info.readMark += initialReadMark(to);
    }
    const bind = this.#bind.get(from);
    if (bind !== undefined) this.#bind.set(to, bind);
    if (this.rejected.has(from)) this.rejected.add(to);
    if (this.sockets.delete(from)) {
      this.sockets.add(to);
      to.on('close', () => {
        this.sockets.delete(to);
        this.released();
      });
    }
  }

  info(socket: Socket): ConnInfo {
    let info = this.#info.get(socket);
    if (!info) {
      info = {
        id: nextConnectionId++,
        requests: 0,
        startMs: performance.now(),
        readMark: initialReadMark(socket),
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
        localAddress: this.#sharedLocal(socket.localAddress ?? ''),
        localPort: socket.localPort ?? 0,
        tls: this.#bind.get(socket)?.tls ?? false,
        ssl: sslInfoOf(socket),
        proxyProtocol: this.proxyProtocol.get(socket) ?? null,
        registry: this,
      };
      this.#info.set(socket, info);
    }
    return info;
  }

  #sharedLocal(address: string): string {
    if (address !== this.#localAddress) this.#localAddress = address;
    return this.#localAddress;
  }

  /** socket.bytesRead when the connection's current request head began (before any: what the addon read, below zero). */
  readMark(socket: Socket): number {
    return this.#info.get(socket)?.readMark ?? initialReadMark(socket);
  }

  /** The connection's info if a request has been seen on it (without making one). */
  peek(socket: Socket): ConnInfo | undefined {
    return this.#info.get(socket);
  }

  /** True when the connection is one of this registry's (event subscribers filter with it). */
  owns(conn: ConnInfo): boolean {
    return conn.registry === this;
  }

  /** The routes for the address the client connected to (a wildcard bind serves several). */
  routesFor(socket: Socket, routes: ReadonlyMap<string, ListenerRoutes>): ListenerRoutes {
    const bind = this.#bind.get(socket);
    if (bind) {
      const exact = routes.get(addressKey(socket.localAddress ?? '', bind.configuredPort));
      if (exact) return exact;
      const wild = routes.get(bind.key);
      if (wild) return wild;
    }
    return routes.values().next().value as ListenerRoutes;
  }
}
