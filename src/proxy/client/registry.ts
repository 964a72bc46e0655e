/**
 * The upstream clients by name, and the one this process uses: chosen once, at load. The lean
 * client where the Node internals it stands on are all there (checked together, lean-client.ts)
 * and `SLUICE_UPSTREAM_CLIENT` is not `node`; `http.request` otherwise. Every upstream, `http://`
 * and `https://`, plain requests and upgrades, goes through the one chosen.
 */
import { leanClient } from './lean-client.js';
import { nodeClient } from './node-client.js';
import type { UpstreamClient, UpstreamClientName } from './upstream-client.js';

/** Every implementation by name; null where it cannot run in this Node. */
export type UpstreamClients = Readonly<Record<UpstreamClientName, UpstreamClient | null>> & { readonly node: UpstreamClient };

export const UPSTREAM_CLIENTS: UpstreamClients = Object.freeze({ lean: leanClient, node: nodeClient });

/** The client for a process with this environment: `node` when asked for or when `lean` cannot run. */
export function chooseUpstreamClient(env: NodeJS.ProcessEnv = process.env, clients: UpstreamClients = UPSTREAM_CLIENTS): UpstreamClient {
  return (env['SLUICE_UPSTREAM_CLIENT'] === 'node' ? null : clients.lean) ?? clients.node;
}

/** The client every upstream exchange in this process goes through. */
export const upstreamClient: UpstreamClient = chooseUpstreamClient();
