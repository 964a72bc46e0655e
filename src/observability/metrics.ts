/**
 * A stats snapshot in the Prometheus text exposition format (version 0.0.4): each family has one
 * `# HELP` and one `# TYPE` line before its samples, samples of a family are contiguous, counters
 * end in `_total`, histograms give cumulative `_bucket{le="..."}` lines ending with `+Inf`, then
 * `_sum` and `_count`. Label values escape `\`, `"` and newlines; HELP text escapes `\` and
 * newlines. Render a merged snapshot to expose several worker processes as one.
 */
import { PEER_STATES } from './stats.js';
import type { FleetStats, Histogram, StatsSnapshot } from './stats.js';

/** The Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Readonly<Record<string, string>>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}`;
}

/** Builds the exposition text family by family. */
class Exposition {
  readonly #lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: () => void): void {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    samples();
  }

  sample(name: string, labels: Labels, value: number): void {
    this.#lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
  }

  histogram(name: string, labels: Labels, h: Histogram): void {
    let cumulative = 0;
    h.bounds.forEach((bound, i) => {
      cumulative += h.counts[i] ?? 0;
      this.sample(`${name}_bucket`, { ...labels, le: formatValue(bound) }, cumulative);
    });
    this.sample(`${name}_bucket`, { ...labels, le: '+Inf' }, h.count);
    this.sample(`${name}_sum`, labels, h.sum);
    this.sample(`${name}_count`, labels, h.count);
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}

function sortedEntries<T>(record: Readonly<Record<string, T>>): [string, T][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The Prometheus text for a snapshot (one process, or several merged with mergeSnapshots). */
export function renderPrometheus(s: StatsSnapshot): string {
  const x = new Exposition();
  const servers = sortedEntries(s.servers);
  const upstreams = sortedEntries(s.upstreams);
  const peers = upstreams.flatMap(([u, up]) => sortedEntries(up.peers).map(([addr, p]) => ({ u, addr, p })));

  // One instance, however many workers are summed (sluice_workers counts them).
  x.family('sluice_info', 'gauge', 'Sluice version (always 1).', () => x.sample('sluice_info', { version: s.version }, 1));
  x.family('sluice_workers', 'gauge', 'Processes whose figures are summed here.', () => x.sample('sluice_workers', {}, s.workers));
  x.family('sluice_start_time_seconds', 'gauge', 'When counting began (Unix time, the earliest process).', () =>
    x.sample('sluice_start_time_seconds', {}, s.startTime / 1000));

  x.family('sluice_connections_accepted_total', 'counter', 'Client connections accepted (stub_status accepts).', () =>
    x.sample('sluice_connections_accepted_total', {}, s.connections.accepted));
  x.family('sluice_connections_handled_total', 'counter', 'Client connections handled, that is not refused at worker_connections (stub_status handled).', () =>
    x.sample('sluice_connections_handled_total', {}, s.connections.handled));
  x.family('sluice_requests_total', 'counter', 'Client requests, WebSocket handshakes included (stub_status requests).', () =>
    x.sample('sluice_requests_total', {}, s.connections.requests));
  x.family('sluice_connections_active', 'gauge', 'Open client connections (stub_status Active connections).', () =>
    x.sample('sluice_connections_active', {}, s.connections.active));
  x.family('sluice_connections', 'gauge', 'Open client connections by state: reading a request head, writing (serving a request or a tunnel), waiting (idle keep-alive).', () => {
    x.sample('sluice_connections', { state: 'reading' }, s.connections.reading);
    x.sample('sluice_connections', { state: 'writing' }, s.connections.writing);
    x.sample('sluice_connections', { state: 'waiting' }, s.connections.waiting);
  });

  x.family('sluice_dashboard_viewers', 'gauge', 'Dashboard event streams open: counted in no other figure.', () =>
    x.sample('sluice_dashboard_viewers', {}, s.viewers.open));

  x.family('sluice_http_requests_total', 'counter', 'HTTP requests by server block and final status (WebSocket handshakes not included).', () => {
    for (const [name, srv] of servers) for (const [status, n] of sortedEntries(srv.requests)) x.sample('sluice_http_requests_total', { server_name: name, status }, n);
  });
  x.family('sluice_websocket_handshakes_total', 'counter', 'WebSocket upgrade requests by server block and status (101 = tunnel opened).', () => {
    for (const [name, srv] of servers) for (const [status, n] of sortedEntries(srv.handshakes)) x.sample('sluice_websocket_handshakes_total', { server_name: name, status }, n);
  });
  x.family('sluice_server_requests_in_flight', 'gauge', 'Requests being served by the server block, open tunnels included.', () => {
    for (const [name, srv] of servers) x.sample('sluice_server_requests_in_flight', { server_name: name }, srv.inFlight);
  });
  x.family('sluice_server_tunnels_open', 'gauge', 'Open tunnels by server block.', () => {
    for (const [name, srv] of servers) x.sample('sluice_server_tunnels_open', { server_name: name }, srv.tunnels);
  });
  x.family('sluice_received_bytes_total', 'counter', 'Bytes read from clients by server block, tunnelled bytes included.', () => {
    for (const [name, srv] of servers) x.sample('sluice_received_bytes_total', { server_name: name }, srv.bytesReceived);
  });
  x.family('sluice_sent_bytes_total', 'counter', 'Bytes written to clients by server block, tunnelled bytes included.', () => {
    for (const [name, srv] of servers) x.sample('sluice_sent_bytes_total', { server_name: name }, srv.bytesSent);
  });

  const caches = sortedEntries(s.caches ?? {});
  x.family('sluice_cache_requests_total', 'counter', 'Requests the proxy cache answered (hit: HIT, STALE, UPDATING, REVALIDATED) or sent upstream (miss: MISS, EXPIRED), by zone.', () => {
    for (const [zone, c] of caches) {
      x.sample('sluice_cache_requests_total', { zone, result: 'hit' }, c.hits);
      x.sample('sluice_cache_requests_total', { zone, result: 'miss' }, c.misses);
    }
  });
  x.family('sluice_cache_sent_bytes_total', 'counter', 'Body bytes sent from cache entries, by zone.', () => {
    for (const [zone, c] of caches) x.sample('sluice_cache_sent_bytes_total', { zone }, c.bytesFromCache);
  });
  x.family('sluice_cache_stores_total', 'counter', 'Responses written to the cache, by zone.', () => {
    for (const [zone, c] of caches) x.sample('sluice_cache_stores_total', { zone }, c.stores);
  });
  x.family('sluice_cache_evictions_total', 'counter', 'Entries the cache manager removed (inactive, max_size, min_free), by zone.', () => {
    for (const [zone, c] of caches) x.sample('sluice_cache_evictions_total', { zone }, c.evictions);
  });
  x.family('sluice_cache_size_bytes', 'gauge', 'Bytes of the cache entries on disk, by zone.', () => {
    for (const [zone, c] of caches) x.sample('sluice_cache_size_bytes', { zone }, c.size);
  });
  x.family('sluice_cache_entries', 'gauge', 'Entries in the cache, by zone.', () => {
    for (const [zone, c] of caches) x.sample('sluice_cache_entries', { zone }, c.entries);
  });
  const limitReqs = sortedEntries(s.limitReqs ?? {});
  x.family('sluice_limit_req_requests_total', 'counter', 'Requests by limit_req zone and outcome ($limit_req_status in lower case: passed, delayed, rejected, delayed_dry_run, rejected_dry_run).', () => {
    for (const [zone, f] of limitReqs) for (const [result, n] of Object.entries(f)) x.sample('sluice_limit_req_requests_total', { zone, result }, n);
  });
  const limitConns = sortedEntries(s.limitConns ?? {});
  x.family('sluice_limit_conn_requests_total', 'counter', 'Requests and tunnels by limit_conn zone and outcome ($limit_conn_status in lower case: passed, rejected, rejected_dry_run).', () => {
    for (const [zone, f] of limitConns) for (const [result, n] of Object.entries(f)) x.sample('sluice_limit_conn_requests_total', { zone, result }, n);
  });
  x.family('sluice_tunnels_open', 'gauge', 'Open tunnels (WebSocket and other upgrades).', () => x.sample('sluice_tunnels_open', {}, s.tunnels.open));
  x.family('sluice_upstream_tunnels_opened_total', 'counter', 'Tunnels opened by upstream.', () => {
    for (const [u, up] of upstreams) x.sample('sluice_upstream_tunnels_opened_total', { upstream: u }, up.tunnelsOpened);
  });
  x.family('sluice_upstream_tunnels_closed_total', 'counter', 'Tunnels closed by upstream and reason.', () => {
    for (const [u, up] of upstreams) for (const [reason, n] of sortedEntries(up.tunnelsClosed)) x.sample('sluice_upstream_tunnels_closed_total', { upstream: u, reason }, n);
  });
  x.family('sluice_upstream_websocket_closes_total', 'counter', 'WebSocket tunnels closed by upstream, by the status code of the first close frame and the side that sent it (sluice: its own; 1006/none: no close frame).', () => {
    for (const [u, up] of upstreams) {
      for (const [key, n] of sortedEntries(up.websocketCloses)) {
        const [code, side] = key.split('/') as [string, string];
        x.sample('sluice_upstream_websocket_closes_total', { upstream: u, code, side }, n);
      }
    }
  });
  x.family('sluice_tunnel_duration_seconds', 'histogram', 'How long closed tunnels were open, by upstream.', () => {
    for (const [u, up] of upstreams) x.histogram('sluice_tunnel_duration_seconds', { upstream: u }, up.tunnelDuration);
  });
  x.family('sluice_upstream_connect_seconds', 'histogram', 'Time to connect to an upstream server (0 for a reused keepalive connection), by upstream.', () => {
    for (const [u, up] of upstreams) x.histogram('sluice_upstream_connect_seconds', { upstream: u }, up.connectTime);
  });
  x.family('sluice_upstream_retries_total', 'counter', 'Tries after the first one of a request (proxy_next_upstream), by upstream.', () => {
    for (const [u, up] of upstreams) x.sample('sluice_upstream_retries_total', { upstream: u }, up.retries);
  });
  x.family('sluice_upstream_connections', 'gauge', 'Open connections to the upstream, tunnels included.', () => {
    for (const [u, up] of upstreams) x.sample('sluice_upstream_connections', { upstream: u }, Object.values(up.peers).reduce((n, p) => n + p.active, 0));
  });
  x.family('sluice_upstream_tunnels_open', 'gauge', 'Open tunnels to the upstream.', () => {
    for (const [u, up] of upstreams) x.sample('sluice_upstream_tunnels_open', { upstream: u }, Object.values(up.peers).reduce((n, p) => n + p.tunnels, 0));
  });

  x.family('sluice_upstream_server_connections', 'gauge', 'Open connections to the upstream server, tunnels included.', () => {
    for (const { u, addr, p } of peers) x.sample('sluice_upstream_server_connections', { upstream: u, server: addr }, p.active);
  });
  x.family('sluice_upstream_server_tunnels_open', 'gauge', 'Open tunnels to the upstream server.', () => {
    for (const { u, addr, p } of peers) x.sample('sluice_upstream_server_tunnels_open', { upstream: u, server: addr }, p.tunnels);
  });
  x.family('sluice_upstream_server_requests_total', 'counter', 'Tries sent to the upstream server (requests and handshakes).', () => {
    for (const { u, addr, p } of peers) x.sample('sluice_upstream_server_requests_total', { upstream: u, server: addr }, p.attempts);
  });
  x.family('sluice_upstream_server_failures_total', 'counter', 'Tries at the upstream server that failed (no response, or a response that made the request move on).', () => {
    for (const { u, addr, p } of peers) x.sample('sluice_upstream_server_failures_total', { upstream: u, server: addr }, p.failures);
  });
  x.family('sluice_upstream_server_fails', 'gauge', 'Passive health: failures counted in the current fail_timeout window (max_fails reached = failed).', () => {
    for (const { u, addr, p } of peers) x.sample('sluice_upstream_server_fails', { upstream: u, server: addr }, p.fails);
  });
  x.family('sluice_upstream_server_healthy', 'gauge', 'Active health: 1 when health checks pass or the server is not checked (summed over processes).', () => {
    for (const { u, addr, p } of peers) x.sample('sluice_upstream_server_healthy', { upstream: u, server: addr }, p.healthy);
  });
  x.family('sluice_upstream_server_state', 'gauge', 'Processes that see the upstream server in each state (up, full, draining, failed, unhealthy, down).', () => {
    for (const { u, addr, p } of peers) for (const state of PEER_STATES) x.sample('sluice_upstream_server_state', { upstream: u, server: addr, state }, p.states[state] ?? 0);
  });

  x.family('sluice_upstream_rebalance_closes_total', 'counter', 'Tunnels websocket_rebalance closed on the upstream server (each client got its close code, 1012 by default).', () => {
    for (const { u, addr, p } of peers) if (s.upstreams[u]?.rebalance !== undefined || (p.rebalanceCloses ?? 0) > 0) x.sample('sluice_upstream_rebalance_closes_total', { upstream: u, server: addr }, p.rebalanceCloses ?? 0);
  });
  const rebalanced = upstreams.filter(([, up]) => up.rebalance !== undefined);
  x.family('sluice_upstream_rebalancing', 'gauge', 'Processes whose websocket_rebalance plan wants tunnels of the upstream moved now (0: balanced).', () => {
    for (const [u, up] of rebalanced) x.sample('sluice_upstream_rebalancing', { upstream: u }, up.rebalance!.rebalancing);
  });
  x.family('sluice_upstream_rebalance_pending', 'gauge', 'Tunnels the websocket_rebalance plans of the upstream want moved now.', () => {
    for (const [u, up] of rebalanced) x.sample('sluice_upstream_rebalance_pending', { upstream: u }, up.rebalance!.pending);
  });

  x.family('sluice_internal_errors_total', 'counter', 'Unexpected errors (bugs) caught by the safety net; each answered its request with 500 or closed it.', () =>
    x.sample('sluice_internal_errors_total', {}, s.internalErrors));
  x.family('sluice_reloads_total', 'counter', 'Configuration reloads by result (each counted once, however many workers applied it).', () => {
    x.sample('sluice_reloads_total', { result: 'ok' }, s.reloads.ok);
    x.sample('sluice_reloads_total', { result: 'failed' }, s.reloads.failed);
  });
  x.family('sluice_reload_drained_tunnels_total', 'counter', 'Open tunnels whose upstream server a reload removed.', () =>
    x.sample('sluice_reload_drained_tunnels_total', {}, s.reloads.drained));
  x.family('sluice_last_reload_success', 'gauge', '1 when the last reload succeeded (or there was none), 0 when it failed.', () =>
    x.sample('sluice_last_reload_success', {}, s.reloads.lastOk));
  x.family('sluice_last_reload_timestamp_seconds', 'gauge', 'When the last reload was tried (Unix time; 0 = never).', () =>
    x.sample('sluice_last_reload_timestamp_seconds', {}, s.reloads.lastTime / 1000));
  if (s.fleet !== undefined) renderFleet(x, s.fleet);
  return x.text();
}

/** The `fleet` families: Redis's state as this instance sees it, and each live member's figures. */
function renderFleet(x: Exposition, f: FleetStats): void {
  x.family('sluice_fleet_redis_up', 'gauge', '1 when the fleet\'s Redis answered the last round trip, 0 while balancing on local counts.', () =>
    x.sample('sluice_fleet_redis_up', { url: f.url }, f.redisUp ? 1 : 0));
  x.family('sluice_fleet_limit_fallbacks_total', 'counter', 'Requests and tunnels a `limit_*_zone ... fleet` zone decided on this instance\'s own counts because Redis was unreachable.', () =>
    x.sample('sluice_fleet_limit_fallbacks_total', {}, f.limits?.fallbacks ?? 0));
  x.family('sluice_fleet_limit_zone_local', 'gauge', '1 for each fleet limit zone counting on this instance only since Redis failed it.', () => {
    for (const zone of f.limits?.local ?? []) x.sample('sluice_fleet_limit_zone_local', { zone }, 1);
  });
  x.family('sluice_fleet_members', 'gauge', 'Live fleet members (processes) as last read from Redis.', () =>
    x.sample('sluice_fleet_members', {}, f.members.length));
  x.family('sluice_fleet_last_read_timestamp_seconds', 'gauge', 'When the fleet was last read from Redis (Unix time; 0 = never).', () =>
    x.sample('sluice_fleet_last_read_timestamp_seconds', {}, f.readAt / 1000));
  x.family('sluice_fleet_member_tunnels_open', 'gauge', 'Open tunnels on each fleet member.', () => {
    for (const m of f.members) x.sample('sluice_fleet_member_tunnels_open', { member: m.id, name: m.name }, m.tunnels);
  });
  x.family('sluice_fleet_member_connections', 'gauge', 'Open client connections on each fleet member.', () => {
    for (const m of f.members) x.sample('sluice_fleet_member_connections', { member: m.id, name: m.name }, m.connections);
  });
  x.family('sluice_fleet_member_server_connections', 'gauge', 'Open connections from each fleet member to each upstream server, tunnels included.', () => {
    for (const m of f.members) {
      for (const [u, servers] of sortedEntries(m.upstreams)) {
        for (const [server, view] of sortedEntries(servers)) x.sample('sluice_fleet_member_server_connections', { member: m.id, upstream: u, server }, view[0]);
      }
    }
  });
}
