/**
 * The upstream clients by name, and the one this process uses: chosen once, at load. The lean
 * client where the Node internals it stands on are all there (checked together, lean-client.ts)
 * and `SLUICE_UPSTREAM_CLIENT` is not `node`; `http.request` otherwise. Every upstream, `http://`
 * and `https://`, plain requests and upgrades, goes through the one chosen.
 * `SLUICE_UPSTREAM_CLIENT=undici` chooses undici (undici-client.ts), a measurement-only client
 * whose package, a devDependency, is loaded when the server starts (upstreamClientReady).
 */
import { leanClient } from './lean-client.js';
import { nodeClient } from './node-client.js';
import { undiciClient } from './undici-client.js';
import type { UpstreamClient, UpstreamClientName } from './upstream-client.js';

/** Every implementation by name; null where it cannot run in this Node (undici: measurement only, may be left out). */
export type UpstreamClients = Readonly<Record<Exclude<UpstreamClientName, 'undici'>, UpstreamClient | null>> & {
  readonly node: UpstreamClient;
  readonly undici?: UpstreamClient | null;
};

export const UPSTREAM_CLIENTS: UpstreamClients = Object.freeze({ lean: leanClient, node: nodeClient, undici: undiciClient });

/**
 * The client for a process with this environment: `undici` only when asked for (and only where
 * it is offered), `node` when asked for or when `lean` cannot run.
 */
export function chooseUpstreamClient(env: NodeJS.ProcessEnv = process.env, clients: UpstreamClients = UPSTREAM_CLIENTS): UpstreamClient {
  const asked = env['SLUICE_UPSTREAM_CLIENT'];
  if (asked === 'undici' && clients.undici != null) return clients.undici;
  return (asked === 'node' ? null : clients.lean) ?? clients.node;
}

/** The client every upstream exchange in this process goes through. */
export const upstreamClient: UpstreamClient = chooseUpstreamClient();

/** Resolves once the chosen client can serve; rejects with why the process cannot start with it. */
export async function upstreamClientReady(client: UpstreamClient = upstreamClient): Promise<void> {
  await client.ready?.();
}
