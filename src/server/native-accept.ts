/**
 * Accepting in the addon (issue 15, item 2; native/sluice_accept.c): a plain-TCP listening socket
 * is opened by Node as before (net.Server.listen: bind errors, port 0, reuse across reloads stay
 * Node's), then the addon takes a duplicate of it and Node's own handle is closed, so libuv never
 * accepts on it: the relay's I/O thread accepts, reads the first bytes (the request head, waited
 * for until it is complete or cannot be a WebSocket handshake) and reports the connections here
 * in batches, one call per wake-up of that thread.
 *
 * The net.Server keeps a stand-in handle that answers address() from the bound address and whose
 * close() stops the addon accepting and closes its duplicate: a reload that keeps the address
 * keeps the server and so the listener, and close() (graceful stop, a reload that drops the
 * address) stops accepting as it did. Each connection reported is then what libuv's accept would
 * have made of it (`new net.Socket({fd})`, counted in the server's connections, its
 * `'connection'` event) with the bytes already read put back first, so every front end sees it
 * as before; a head that client_header_timeout cut short is timed out at once.
 *
 * `SLUICE_ACCEPT=node` turns it off (libuv accepts, as before); so does anything that needs the
 * listening socket elsewhere: TLS, PROXY protocol, HTTP/2 on a plain port (Node's server reads
 * it), SLUICE_FRONT=node, and cluster workers on the primary's round robin (they hold no
 * listening socket). Workers that accept for themselves (`listen ... reuseport`: a socket each
 * where Node has reusePort, the primary's shared socket otherwise) accept in their addon.
 */
import { closeSync } from 'node:fs';
import type { Server } from 'node:http';
import { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tunnelAddon } from '../core/native-addon.js';
import { nativeTunnels } from '../proxy/tunnel/native-tunnels.js';
import { notePreRead } from './connections.js';
import { ACCEPT_SHARE_ENV } from '../cluster/load-table.js';

/** What native/sluice_accept.c exports on the tunnel addon (absent from an addon built before it). */
export interface AcceptAddon {
  acceptInit(onBatch: (nums: number[], addrs: string[], localAddrs: string[], heads: Buffer[]) => void): number;
  acceptListen(fd: number, headerTimeoutMs: number, maxHead: number, balanced?: number): number;
  acceptConfigure(id: number, headerTimeoutMs: number, maxHead: number): number;
  acceptStop(id: number): number;
  acceptWatch(fd: number): number;
  acceptUnwatch(id: number): number;
  acceptSend(fd: number, data: Buffer): number;
  acceptRef(on: boolean): number;
  acceptStats(): { accepted: number; handed: number; watches: number };
  acceptHeld(id: number): [number, number];
  /** Maps the workers' shared load table (fd inherited from the primary) and takes `slot` in it (absent from older builds). */
  acceptShare?(fd: number, slot: number): number;
  /** The connections this worker's JavaScript holds and has taken from the addon so far, into the shared table. */
  acceptLoad?(held: number, taken: number): number;
}

/** Report kinds (sluice_accept.c REP_*; 0 is a connection). */
const REP_TIMEOUT = 1;
const REP_GONE = 2;
const REP_UPGRADE = 3;
/**
 * Numbers per report: kind, listener, descriptor (a watch for REP_GONE), peer port, local port
 * (wildcard listeners), the watch on the descriptor (REP_UPGRADE; -1: none).
 */
const STRIDE = 6;
/** Watch slots in the addon (MAX_WATCHES): a watch id is generation * WATCH_SLOTS + slot. */
const WATCH_SLOTS = 65_536;

/** Connections the addon accepted, over the process's life (the tests check which path accepted). */
export const nativeAcceptCounts = { accepted: 0, listeners: 0 };

/** A connection the addon accepted: its descriptor is the taker's. */
export interface AcceptedConnection {
  readonly fd: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** What the addon read (possibly nothing). */
  readonly head: Buffer;
  /** client_header_timeout passed before the head was complete. */
  readonly timedOut: boolean;
  /** The head is complete and looks like a WebSocket handshake (a GET with an Upgrade line). */
  readonly upgrade: boolean;
  /** The local address and port, for a wildcard listener only ("" and 0 otherwise: the listener's own address is the connection's). */
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * An upgrade's watch (the addon watches the descriptor for the client going away from the hand-over
   * on, in the registration it read the head with): the taker claims it, or ends it before the
   * descriptor is closed or becomes a net.Socket (unwatch). -1: none.
   */
  readonly watch: number;
}

/** Takes each connection the addon accepted on a listener. */
export type AcceptedListener = (c: AcceptedConnection) => void;

type ServerInternals = Server & {
  _handle: ListenHandle | null;
  _connections: number;
  maxHeaderSize?: number;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  allowHalfOpen?: boolean;
};

interface ListenHandle {
  fd?: number;
  close(cb?: () => void): void;
  getsockname(out: object): number;
  ref(): void;
  unref(): void;
}

/**
 * What libuv's accept would have made of a connection on `server` (net.Server's onconnection):
 * a socket on the descriptor, counted in the server's connections, announced by its
 * `'connection'` event; the bytes the addon read come first.
 */
export function socketForAccepted(server: Server, fd: number, head: Buffer): Socket {
  const socket = openAccepted(server, fd, head.length);
  if (head.length > 0) socket.unshift(head);
  server.emit('connection', socket);
  return socket;
}

/** A socket on an accepted descriptor, counted in `server`'s connections; `preRead` bytes were read already. */
export function openAccepted(server: Server, fd: number, preRead: number): Socket {
  const s = server as ServerInternals;
  const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: s.allowHalfOpen ?? false });
  notePreRead(socket, preRead);
  // The addon set TCP_NODELAY on accept, as libuv does for Node's HTTP server (noDelay).
  if (s.keepAlive === true) socket.setKeepAlive(true, s.keepAliveInitialDelay ?? 0);
  s._connections++;
  const owned = socket as unknown as { server: Server; _server: Server };
  owned.server = server;
  owned._server = server;
  return socket;
}

/** The process's accepting addon: its listeners and watches, the batches it reports. */
export class NativeAcceptor {
  readonly addon: AcceptAddon;
  /**
   * By listener id (a slot and its generation: ids are not reused). A stopped listener's entry
   * stays: a connection the addon accepted before the stop is still served by its server, as one
   * libuv accepted before a reload dropped the address is.
   */
  readonly #listeners = new Map<number, AcceptedListener>();
  readonly #active = new Set<number>();
  /** By watch id (the addon's slot and its generation): a late report of an ended watch finds nothing. */
  readonly #watches = new Map<number, () => void>();
  #open = 0;
  /** This worker has a slot in the primary's load table. */
  #sharing = false;
  /** The balanced listeners' load sources (each proxy's open connections). */
  readonly #loads = new Map<number, () => number>();
  /** The distinct sources among them (listeners of one proxy share its source). */
  #sources: (() => number)[] = [];

  constructor(addon: AcceptAddon) {
    this.addon = addon;
  }

  /**
   * Accepts on `fd` in the addon. With `load` (a socket shared with other workers, where the
   * primary made a load table), within this worker's share: `load` counts the connections its
   * proxy holds (not those the addon still reads: the table counts them from accept).
   */
  listen(fd: number, headerTimeoutMs: number, maxHead: number, take: AcceptedListener, load: (() => number) | null = null): number {
    const balanced = load !== null && this.#sharing;
    const id = this.addon.acceptListen(fd, headerTimeoutMs, maxHead, balanced ? 1 : 0);
    if (id < 0) return -1;
    this.#listeners.set(id, take);
    this.#active.add(id);
    if (this.#open++ === 0) this.addon.acceptRef(true);
    nativeAcceptCounts.listeners++;
    if (balanced) {
      this.#loads.set(id, load);
      this.#sourcesChanged();
      this.publishLoad();
    }
    return id;
  }

  stop(id: number): void {
    if (!this.#active.delete(id)) return;
    this.addon.acceptStop(id);
    nativeAcceptCounts.listeners--;
    if (--this.#open === 0) this.addon.acceptRef(false);
    if (this.#loads.delete(id)) this.#sourcesChanged();
  }

  /** Derives the distinct sources once per listener change, not at each publication (each close). */
  #sourcesChanged(): void {
    this.#sources = [...new Set(this.#loads.values())];
  }

  /** Takes this worker's slot in the primary's load table (`FD:SLOT`); false where it cannot. */
  share(spec: string): boolean {
    const m = /^(\d+):(\d+)$/.exec(spec);
    if (m === null) return false;
    const fd = Number(m[1]);
    this.#sharing = this.addon.acceptShare?.(fd, Number(m[2])) === 1;
    // Mapped (or not usable): the descriptor is not kept, nor passed to this worker's children.
    closeFd(fd);
    return this.#sharing;
  }

  /**
   * Writes this worker's load into the shared table: the connections its proxies hold, and how
   * many it has taken from the addon (which adds those it accepted and JavaScript has not taken).
   * After each batch of accepts, and at once when a connection closes (two stores): the other
   * workers never see more than this worker's stub_status counts, not even for the turn of the
   * event loop a deferred publication would take.
   */
  publishLoad(): void {
    if (this.#sources.length === 0) return;
    let n = 0;
    for (const load of this.#sources) n += load();
    // Taken: every connection the addon reported, counted from zero as the addon's accepts are
    // (the one acceptor shares the table before it listens anywhere).
    this.addon.acceptLoad?.(n, nativeAcceptCounts.accepted);
  }

  /** Calls `gone` once when the client of `fd` goes away; the watch id (for unwatch), or -1. */
  watch(fd: number, gone: () => void): number {
    const id = this.addon.acceptWatch(fd);
    if (id >= 0) this.#watches.set(id, gone);
    return id;
  }

  /** Calls `gone` once when the client of the watch the addon started (an upgrade's) goes away. */
  claim(id: number, gone: () => void): void {
    this.#watches.set(id, gone);
  }

  /** Ends a watch: the descriptor leaves the addon's epoll (before it is closed or becomes a socket). */
  unwatch(id: number): void {
    this.#watches.delete(id);
    this.addon.acceptUnwatch(id);
  }

  /** The relay took the watch with its descriptor (adopt): its registration is the tunnel's now, a late report is dropped. */
  forget(id: number): void {
    this.#watches.delete(id);
  }

  send(fd: number, data: Buffer): number {
    return this.addon.acceptSend(fd, data);
  }

  batch(nums: number[], addrs: string[], localAddrs: string[], heads: Buffer[]): void {
    for (let i = 0, k = 0; i < nums.length; i += STRIDE, k++) {
      const kind = nums[i] as number;
      const fd = nums[i + 2] as number;
      if (kind === REP_GONE) {
        const id = (nums[i + 3] as number) * WATCH_SLOTS + fd;
        const gone = this.#watches.get(id);
        this.#watches.delete(id);
        gone?.();
        continue;
      }
      nativeAcceptCounts.accepted++;
      const take = this.#listeners.get(nums[i + 1] as number);
      const watch = nums[i + 5] as number;
      const c: AcceptedConnection = {
        fd, remoteAddress: addrs[k] as string, remotePort: nums[i + 3] as number, head: heads[k] as Buffer,
        timedOut: kind === REP_TIMEOUT, upgrade: kind === REP_UPGRADE, localAddress: localAddrs[k] as string, localPort: nums[i + 4] as number,
        watch,
      };
      if (take === undefined) {
        this.closeAccepted(c);
        continue;
      }
      try {
        take(c);
      } catch {
        this.closeAccepted(c);
      }
    }
    this.publishLoad();
  }

  /** Closes a connection no one takes: its watch first (no epoll_ctl on a closed descriptor, whose number may be reused). */
  closeAccepted(c: AcceptedConnection): void {
    this.endWatch(c);
    closeFd(c.fd);
  }

  /** Ends an accepted connection's watch, if it has one (before libuv or a close takes the descriptor). */
  endWatch(c: AcceptedConnection): void {
    if (c.watch >= 0) this.unwatch(c.watch);
  }
}

function noop(): void {}

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // not a socket any more: nothing to close
  }
}

let acceptor: NativeAcceptor | null | undefined;

/** The accepting addon, or null where it is not available or SLUICE_ACCEPT=node turns it off. */
export function nativeAcceptor(env: NodeJS.ProcessEnv = process.env): NativeAcceptor | null {
  if (acceptor !== undefined) return acceptor;
  acceptor = null;
  if (env['SLUICE_ACCEPT'] === 'node') return null;
  const addon = tunnelAddon() as (ReturnType<typeof tunnelAddon> & Partial<AcceptAddon>) | null;
  if (addon === null || typeof addon.acceptInit !== 'function' || nativeTunnels() === null) return null;
  // An addon built before upgrades were handed over watched reports other numbers: libuv accepts.
  if (typeof (addon as unknown as AcceptAddon).acceptStats().watches !== 'number') return null;
  const a = new NativeAcceptor(addon as unknown as AcceptAddon);
  if (a.addon.acceptInit((nums, addrs, localAddrs, heads) => a.batch(nums, addrs, localAddrs, heads)) !== 1) return null;
  const share = env[ACCEPT_SHARE_ENV];
  if (share !== undefined) a.share(share);
  acceptor = a;
  return a;
}

/**
 * The handle a server keeps once the addon accepts for it: address() answers from the bound
 * address, close() stops the addon accepting (once), and there is nothing to ref (the addon's
 * thread-safe function keeps the event loop alive while any listener is open).
 */
function standIn(a: NativeAcceptor, id: number, address: AddressInfo, told: (() => void) | null): ListenHandle {
  let closed = false;
  return {
    fd: -1,
    close(cb?: () => void): void {
      if (!closed) {
        closed = true;
        a.stop(id);
        told?.();
      }
      if (cb) process.nextTick(cb);
    },
    getsockname(out: object): number {
      Object.assign(out, address);
      return 0;
    },
    ref: noop,
    unref: noop,
  };
}

/**
 * Moves a listening server's accepting to the addon: false (nothing changed) where it cannot.
 * `take` gets each connection; `headerTimeoutMs` and `maxHead` bound the addon's wait for a head.
 */
export function acceptInAddon(server: Server, take: AcceptedListener, load: (() => number) | null = null): boolean {
  const a = nativeAcceptor();
  const s = server as ServerInternals;
  const handle = s._handle;
  const fd = handle?.fd;
  const address = server.address();
  if (a === null || handle === null || typeof fd !== 'number' || fd < 0 || address === null || typeof address === 'string') return false;
  // A worker's socket shared by the primary (cluster.SCHED_NONE) has a close that also tells the
  // primary this worker is done with it; such a socket is balanced between the workers.
  const told = Object.hasOwn(handle, 'close') ? handle.close : null;
  const id = a.listen(fd, server.headersTimeout, s.maxHeaderSize ?? 16 * 1024, take, told === null ? null : load);
  if (id < 0) return false;
  // libuv stops watching and closes its descriptor; the socket stays bound and listening through
  // the addon's duplicate (connections waiting in the backlog wait for the addon). libuv's side
  // of a shared socket closes without telling the primary, and the stand-in tells when the
  // worker stops listening (the primary closes the socket once no worker listens).
  if (told === null) handle.close();
  else (Object.getPrototypeOf(handle) as ListenHandle).close.call(handle);
  s._handle = standIn(a, id, { ...address }, told === null ? null : () => told.call(handle));
  (server as Server & { [kAcceptId]?: number })[kAcceptId] = id;
  return true;
}

const kAcceptId = Symbol('sluice.acceptId');

const NONE_HELD: readonly [number, number] = [0, 0];

/**
 * The connections the addon accepted for `server` and still reads, [waiting, reading]: nothing
 * read yet, or part of a head. nginx counts them from accept (stub_status, worker_connections).
 */
export function heldByAddon(server: Server): readonly [number, number] {
  const id = (server as Server & { [kAcceptId]?: number })[kAcceptId];
  if (id === undefined || acceptor === null || acceptor === undefined) return NONE_HELD;
  return acceptor.addon.acceptHeld(id);
}

/** A connection of this process closed: the workers' load table hears of it at once (nothing without a balanced listener). */
export function acceptLoadChanged(): void {
  acceptor?.publishLoad();
}

/** A reload changed client_header_timeout or the header size limit of a server the addon accepts for. */
export function reconfigureAccept(server: Server): void {
  const id = (server as Server & { [kAcceptId]?: number })[kAcceptId];
  if (id === undefined || acceptor === null || acceptor === undefined) return;
  acceptor.addon.acceptConfigure(id, server.headersTimeout, (server as ServerInternals).maxHeaderSize ?? 16 * 1024);
}
