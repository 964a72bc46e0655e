import type { Listen, ListenSocketOptions } from '../config/types.js';
import { isIP } from 'node:net';
import type { ListenOptions, Server, Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { LISTEN_SOCKET_DEFAULTS } from '../config/defaults.js';
import { addonReusePort, reusePortOptions } from './reuseport.js';
import { addressKey } from './connections.js';

/** One socket to listen on, serving one or more listen keys. */
export interface BindPlan {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly listenKeys: string[];
  /** Some listen key of this socket has `ssl`: connections go through a TlsFrontend. */
  tls: boolean;
  /** The socket parameters of `listen` for this address (nginx's defaults when none were written). */
  socket: ListenSocketOptions;
  /**
   * The listen keys of this socket with `proxy_protocol`: when there are any, connections go
   * through the TlsFrontend, which reads the PROXY header first on those keys (tls-listener.ts).
   */
  proxyProtocolKeys: Set<string>;
}

/** What `net.Server.listen` takes for this socket: ipv6only, backlog, and reuseport where Node has it. */
export function listenOptions(plan: BindPlan): ListenOptions {
  const o = plan.socket;
  return { host: plan.host, port: plan.port, ipv6Only: plan.host.includes(':') && o.ipv6only, backlog: o.backlog, ...reusePortOptions(o.reuseport, plan.port) };
}

/** nginx's wording for a failed bind() of the listening socket `key`. */
export function bindError(key: string, err: NodeJS.ErrnoException): Error {
  const errno = err.code === 'EADDRINUSE' ? '98: Address already in use' : err.code === 'EACCES' ? '13: Permission denied'
    : err.code === 'EADDRNOTAVAIL' ? '99: Cannot assign requested address' : (err.code ?? err.message);
  return new Error(`bind() to ${key} failed (${errno})`);
}

/** net.Server's internal listen on a descriptor (setupListenHandle, also named _listen2 in Node 20-24). */
type ListenOnFd = (address: null, port: null, addressType: null, backlog: number, fd: number) => void;

/**
 * Listens `server` on `plan`'s socket and calls `listening` once it listens (errors are the
 * server's 'error' event, as with listen()). `reuseport` where Node has no reusePort: the addon
 * opens the socket with SO_REUSEPORT and the server takes it by its descriptor, bound by this
 * process alone (not through a cluster primary, as `exclusive` does where Node has reusePort).
 */
export function listenOn(server: Server, plan: BindPlan, listening: () => void): void {
  const o = plan.socket;
  const own = o.reuseport && plan.port !== 0 && isIP(plan.host) !== 0 ? addonReusePort() : null;
  const onFd = (server as unknown as { _listen2?: ListenOnFd })._listen2;
  if (own === null || typeof onFd !== 'function') {
    server.listen(listenOptions(plan), listening);
    return;
  }
  const fd = own(plan.host, plan.port, plan.host.includes(':') && o.ipv6only, o.backlog);
  if (fd < 0) {
    const code = getSystemErrorName(fd);
    const err = Object.assign(new Error(`listen ${code}: ${plan.key}`), { code, errno: fd, syscall: 'listen', address: plan.host, port: plan.port });
    process.nextTick(() => server.emit('error', err));
    return;
  }
  server.once('listening', listening);
  onFd.call(server, null, null, null, o.backlog, fd);
}

/** `so_keepalive` on an accepted connection (Node sets the idle time; INTVL and CNT stay the system's). */
export function applySocketOptions(socket: Socket, options: ListenSocketOptions): void {
  if (options.keepalive !== null) socket.setKeepAlive(options.keepalive.on, options.keepalive.idleMs);
}


function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/**
 * nginx binds a wildcard address once per port and tells the specific addresses on that port
 * apart by the connection's local address (unless `bind`); Sluice does the same, which also
 * avoids EADDRINUSE between 0.0.0.0:80 and 127.0.0.1:80. Port 0 (ephemeral, for tests) is never
 * merged: each such listen key is its own socket.
 */
export function planBinds(listens: readonly Listen[]): BindPlan[] {
  const plans = new Map<string, BindPlan>();
  const unique = new Map<string, Listen>();
  for (const l of listens) if (!unique.has(l.key)) unique.set(l.key, l);
  for (const l of unique.values()) {
    let bindHost = l.host;
    // `bind` (and every socket parameter, which implies it) keeps an address on a socket of its own.
    const own = listens.find((x) => x.key === l.key && x.socket !== undefined)?.socket;
    if (l.port !== 0 && !isWildcard(l.host) && own?.bind !== true) {
      const v6 = l.host.includes(':');
      const wildcard = v6 ? '::' : '0.0.0.0';
      if (unique.has(addressKey(wildcard, l.port))) bindHost = wildcard;
    }
    const key = addressKey(bindHost, l.port);
    let plan = plans.get(key);
    if (!plan) {
      plan = { key, host: bindHost, port: l.port, listenKeys: [], tls: false, socket: own ?? LISTEN_SOCKET_DEFAULTS, proxyProtocolKeys: new Set() };
      plans.set(key, plan);
    }
    plan.listenKeys.push(l.key);
    // nginx: `ssl` on any server's listen makes the address TLS for every server there.
    if (listens.some((x) => x.key === l.key && x.ssl)) plan.tls = true;
    // So does `proxy_protocol` (ngx_http_add_addresses ORs it like ssl).
    if (listens.some((x) => x.key === l.key && x.proxyProtocol)) plan.proxyProtocolKeys.add(l.key);
  }
  return [...plans.values()];
}
