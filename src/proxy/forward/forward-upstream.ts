/**
 * The name forward-proxy requests are counted under where statistics and metrics group by
 * upstream (`sluice_upstream_tunnels_opened_total{upstream="forward_proxy"}`): their destinations
 * are many and come from clients, so they share one entry instead of one per host.
 */
export const FORWARD_UPSTREAM = 'forward_proxy';
