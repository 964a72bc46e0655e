/**
 * Where `websocket_rebalance` gets the tunnel counts it plans on. Today: this process's own
 * tunnels. A fleet (several Sluice instances sharing state) plugs in a source that answers with the
 * sums over its live instances; the rebalancer then closes only this instance's part of the plan,
 * at its share of the rate (plan.ts `localPart`, `instanceRate`), so that the fleet as a whole
 * stays within `max_rate`.
 */

/** What the rebalancer plans on for one upstream. */
export interface TunnelCountView {
  /** Open WebSocket tunnels per server address ("127.0.0.1:8010"), over every live instance counted. */
  readonly servers: ReadonlyMap<string, number>;
  /** Live instances whose tunnels `servers` counts, this one included (1: local counts). */
  readonly instances: number;
  /**
   * Clients the other instances closed that have not reconnected yet (each will be placed by
   * least_conn): counted like this instance's own, so that the fleet does not close more than
   * balancing needs while they are on their way. 0 or absent with local counts.
   */
  readonly returningElsewhere?: number;
}

/**
 * A source of tunnel counts. `view` is called on every rebalancer tick (a few times a second) for
 * each upstream with `websocket_rebalance`, synchronously: a fleet source answers from what it
 * has cached (never waiting on the network), may publish `local` as this instance's counts, and
 * falls back to `local` itself (instances 1) when it has nothing fresh.
 */
export interface TunnelCountSource {
  /**
   * @param upstream - the upstream's name: with the address, what identifies a server.
   * @param local - this process's open WebSocket tunnels per usable server address (tunnels
   *   already closing not counted).
   * @param returning - clients this process closed that have not reconnected yet.
   */
  view(upstream: string, local: ReadonlyMap<string, number>, returning: number): TunnelCountView;
}

/** The counts of this process alone. */
export const LOCAL_TUNNEL_COUNTS: TunnelCountSource = Object.freeze({
  view(_upstream: string, local: ReadonlyMap<string, number>): TunnelCountView {
    return { servers: local, instances: 1 };
  },
});
