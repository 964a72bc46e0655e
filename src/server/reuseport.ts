/**
 * `listen ... reuseport` (nginx's meaning): every worker process gets a listening socket of its
 * own on the address, bound with SO_REUSEPORT, and the kernel spreads new connections over them;
 * no process accepts for another. Node has `reusePort` in `net.Server.listen` from 22.12 (and
 * 23.1) on, on Linux and the BSDs; with `exclusive` a cluster worker binds the socket itself
 * instead of asking the primary for a shared one. Where Node lacks it, Sluice does what nginx
 * does on a platform without SO_REUSEPORT: says so and listens without it.
 */

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

/**
 * What `listen()` takes for a socket with `reuseport` (nothing where Node has no reusePort). On
 * port 0 ("any free port", a Sluice extension) each worker would get a port of its own, so there
 * the workers share the primary's socket as without `reuseport`.
 */
export function reusePortOptions(reuseport: boolean, port: number): { reusePort?: true; exclusive?: true } {
  return reuseport && port !== 0 && nodeHasReusePort() ? { reusePort: true, exclusive: true } : {};
}
