/**
 * `listen ... reuseport` (nginx's meaning): every worker process gets a listening socket of its
 * own on the address, bound with SO_REUSEPORT, and the kernel spreads new connections over them;
 * no process accepts for another. Node has `reusePort` in `net.Server.listen` from 22.12 (and
 * 23.1) on, on Linux and the BSDs; with `exclusive` a cluster worker binds the socket itself
 * instead of asking the primary for a shared one. Where Node lacks it (Node 20, 22 before 22.12),
 * the native addon opens the socket with SO_REUSEPORT and the worker's net.Server takes its
 * descriptor (binds.ts, listenOn). Without the addon either, Sluice says so in nginx's words and
 * listens on one socket, but the workers still accept for themselves: the primary shares that
 * socket with them (cluster.SCHED_NONE) instead of accepting every connection and passing it over
 * IPC (round robin, Node's default), and the kernel wakes the workers to race for each
 * connection, as nginx's workers do on a shared socket.
 *
 * Without `reuseport`, `accept_mutex` decides, with nginx's meaning. On, "accept new connections
 * by turn": Sluice's turn is Node's round robin, where the primary accepts and hands the workers
 * each connection in turn (at the price of an IPC hand-over per connection: three times the CPU
 * per handshake). Off (the default, nginx's since 1.11.3), every worker is woken and accepts for
 * itself on the shared socket (in its native addon, as one process does), within its share of
 * the workers' load (cluster/load-table.ts), so that a burst of long-lived connections spreads
 * (docs/benchmarks.md, "accept_mutex off: workers weigh their loads").
 */
import type { Config } from '../config/types.js';
import { tunnelAddon } from '../core/native-addon.js';

/** Platforms whose SO_REUSEPORT balances connections over the sockets (Node's list). */
const REUSEPORT_PLATFORMS: ReadonlySet<string> = new Set(['linux', 'freebsd', 'aix', 'sunos']);

/** Whether `net.Server.listen` takes `reusePort` in this Node (>= 22.12 within 22, >= 23.1). */
export function nodeHasReusePort(version: string = process.versions.node, platform: string = process.platform): boolean {
  if (!REUSEPORT_PLATFORMS.has(platform)) return false;
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major === 22) return minor >= 12;
  if (major === 23) return minor >= 1;
  return major > 23;
}

/** The addon's SO_REUSEPORT socket (native/sluice_bind.c) where Node has no reusePort, else null. */
export function addonReusePort(): ((host: string, port: number, ipv6only: boolean, backlog: number) => number) | null {
  if (nodeHasReusePort()) return null;
  const addon = tunnelAddon();
  return typeof addon?.bindReusePort === 'function' ? addon.bindReusePort.bind(addon) : null;
}

/**
 * Whether `listen ... reuseport` gets a socket per worker here: Node's reusePort, or where Node
 * has none, the native addon opens the socket (Linux, the addon built and not SLUICE_NATIVE=off).
 */
export function reusePortAvailable(): boolean {
  return nodeHasReusePort() || addonReusePort() !== null;
}

/**
 * What `listen()` takes for a socket with `reuseport` (nothing where Node has no reusePort). On
 * port 0 ("any free port", a Sluice extension) each worker would get a port of its own, so there
 * the workers share the primary's socket as without `reuseport`.
 */
export function reusePortOptions(reuseport: boolean, port: number): { reusePort?: true; exclusive?: true } {
  return reuseport && port !== 0 && nodeHasReusePort() ? { reusePort: true, exclusive: true } : {};
}

/**
 * Whether the workers accept on the primary's shared sockets (cluster.SCHED_NONE) rather than
 * being handed connections in turn (cluster.SCHED_RR): with `accept_mutex off`; with it on, only
 * where a `listen` asks for `reuseport` and no socket per worker can be made here (nginx's accept
 * mutex does not apply to reuseport sockets). Node fixes the policy for the primary's life at the first fork,
 * for every listen socket: it is read from the configuration the primary starts with, and a
 * reload that would change it says so (primary.ts) and changes it at the next start.
 */
export function workersAcceptShared(config: Config, hasReusePort: boolean = reusePortAvailable()): boolean {
  if (!config.acceptMutex) return true;
  if (hasReusePort) return false;
  return (config.http?.servers ?? []).some((s) => s.listens.some((l) => l.socket?.reuseport === true));
}
