import { channel } from 'node:diagnostics_channel';

/**
 * Named events (node:diagnostics_channel). Publishing checks `hasSubscribers` first, so an
 * event nobody listens to costs one property read. Message shapes are part of the public API.
 *
 * A tunnel keeps its request context for its end. When it opens while `sluice:request:end` and
 * `sluice:tunnel:close` have no subscribers, the context keeps only what its own logs read
 * (RequestContext.compactForTunnel): of the request headers those the access log names plus
 * Host and Upgrade, the upstream's and the sent headers only for `$upstream_http_*` /
 * `$sent_http_*`; a subscriber that comes later sees that context at the tunnel's end (and in
 * `sluice:upstream:rebalance`). Subscribe before the tunnels open to see them whole.
 */
export const events = Object.freeze({
  /**
   * `{ ctx: RequestContext }` when a request (or a WebSocket handshake) has been routed to its
   * server and location (`ctx.server`, `ctx.location` are set), before access checks and proxying.
   */
  requestStart: channel('sluice:request:start'),
  /** `{ ctx: RequestContext }` when an HTTP request or a WebSocket session ends (after logging). */
  requestEnd: channel('sluice:request:end'),
  /** `{ ctx: RequestContext, upstream: string, server: string }` when a tunnel opens. */
  tunnelOpen: channel('sluice:tunnel:open'),
  /** `{ ctx: RequestContext, upstream: string, server: string, reason: string }` when a tunnel closes. */
  tunnelClose: channel('sluice:tunnel:close'),
  /**
   * `{ ctx: RequestContext, upstream: string, server: string, code: number }` when
   * websocket_rebalance closes a tunnel (it goes away with close `code`).
   */
  upstreamRebalance: channel('sluice:upstream:rebalance'),
  /** `{ upstream: string, server: string, reason: 'balancer' | 'retry' }` for each pick. */
  upstreamPick: channel('sluice:upstream:pick'),
  /** `{ upstream: string, server: string, error: string }` for each failed attempt. */
  upstreamFail: channel('sluice:upstream:fail'),
  /** `{ upstream: string, server: string, healthy: boolean, reason: string }` when active health changes. */
  upstreamHealth: channel('sluice:upstream:health'),
  /**
   * `{ ok: boolean, file: string, problems: string[], drained: number, proxy?: object }` after each
   * reload attempt; `proxy` is the ProxyServer reloaded (stats count only their own proxy's reloads).
   */
  reload: channel('sluice:reload'),
  /**
   * `{ ctx: RequestContext | null, error: unknown }` when an unexpected error (a bug) escaped the
   * handling of a request, or of the process (ctx null); the request was answered 500 or closed.
   */
  internalError: channel('sluice:internal-error'),
});
