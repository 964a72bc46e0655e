/**
 * The status content handlers: `stub_status` (nginx's text), `sluice_metrics` (Prometheus text),
 * `sluice_status` (JSON) and `sluice_dashboard` (a self-contained page that follows the
 * proxy live over Server-Sent Events served by the same location: `?events`, or a request that
 * accepts `text/event-stream`). They answer GET and HEAD, anything else gets nginx's 405, and
 * run after the access phase like any content handler. The figures come from the proxy's
 * ProxyStats, merged with other worker processes' when a gatherer is set.
 */
import { serverSignature } from '../proxy/answer/server-tokens.js';
import { ERROR_CATALOG } from '../core/errors.js';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { AdminHandler, Settings } from '../config/types.js';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from '../observability/metrics.js';
import type { ProxyStats } from '../observability/stats-collector.js';
import type { StatsSnapshot } from '../observability/stats.js';
import { reasonPhrase } from '../proxy/answer/error-page.js';
import { logContext } from '../proxy/context/log-context.js';
import type { ProxyRuntime } from '../proxy/session/proxy-runtime.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import { errorResponse, sendLocal, sendLocalRaw } from '../proxy/answer/respond.js';
import type { LocalResponse } from '../proxy/answer/respond.js';
import { applyHeadersFilter, rememberSent } from '../proxy/headers/response-headers.js';
import type { Variables } from '../proxy/context/variables.js';
import { DASHBOARD_CSP, dashboardPage } from './dashboard-page.js';
import { stubStatusText } from './stub-status.js';

/** How often an event stream asks the browser to reconnect after a drop (SSE `retry:`, ms). */
export const EVENTS_RETRY_MS = 2000;

/** True for the dashboard's event stream: `?events` in the query, or `Accept: text/event-stream`. */
export function wantsEvents(ctx: RequestContext): boolean {
  if (/(^|&)events(=|&|$)/.test(ctx.args)) return true;
  const accept = ctx.headers.accept;
  return typeof accept === 'string' && accept.toLowerCase().includes('text/event-stream');
}

function need(snap: StatsSnapshot | null): StatsSnapshot {
  if (snap === null) throw new Error('internal: this status handler needs a snapshot');
  return snap;
}

/** The response of a handler for one snapshot (the dashboard's page needs none: pass null). */
export function adminResponse(handler: AdminHandler, snap: StatsSnapshot | null, settings: Settings, ctx: RequestContext, vars: Variables): LocalResponse {
  let headers: string[];
  let body: string;
  switch (handler) {
    case 'stub_status':
      // nginx sends text/plain and nothing else of its own.
      headers = ['Content-Type', 'text/plain'];
      body = stubStatusText(need(snap).connections);
      break;
    case 'metrics':
      headers = ['Content-Type', PROMETHEUS_CONTENT_TYPE, 'Cache-Control', 'no-cache'];
      body = renderPrometheus(need(snap));
      break;
    case 'status':
      headers = ['Content-Type', 'application/json', 'Cache-Control', 'no-cache'];
      body = `${JSON.stringify(need(snap), null, 2)}\n`;
      break;
    case 'dashboard':
      headers = ['Content-Type', 'text/html; charset=utf-8', 'Cache-Control', 'no-cache', 'Content-Security-Policy', DASHBOARD_CSP,
        'X-Content-Type-Options', 'nosniff'];
      body = dashboardPage();
      break;
  }
  ctx.status = 200;
  applyHeadersFilter(settings, 200, ctx, vars, headers);
  return { status: 200, headers, body, drop: false, server: serverSignature(settings) };
}

function refuse(rt: ProxyRuntime, settings: Settings, ctx: RequestContext): LocalResponse | null {
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return errorResponse(405, settings, ctx, rt.vars);
  if (rt.stats === null) return errorResponse(503, settings, ctx, rt.vars);
  return null;
}

/**
 * Serves a status location on an ordinary request. The promise (when the answer waits for the
 * other workers' figures) rejects only if answering throws: the caller's safety net handles it.
 */
export function serveAdmin(rt: ProxyRuntime, handler: AdminHandler, settings: Settings, ctx: RequestContext, res: ServerResponse): Promise<void> | undefined {
  const refused = refuse(rt, settings, ctx);
  if (refused !== null) {
    sendLocal(res, refused, ctx);
    return undefined;
  }
  const stats = rt.stats as ProxyStats;
  if (handler === 'dashboard' && wantsEvents(ctx)) {
    return streamEvents(rt, stats, settings, ctx, res);
  }
  if (handler === 'dashboard') {
    sendLocal(res, adminResponse(handler, null, settings, ctx, rt.vars), ctx);
    return undefined;
  }
  return stats.combinedSnapshot().then((snap) => {
    if (!res.destroyed) sendLocal(res, adminResponse(handler, snap, settings, ctx, rt.vars), ctx);
  }, (err: unknown) => {
    rt.errorLog(settings).log('error', `cannot collect the status: ${(err as Error).message}${logContext(ctx)}`, ctx.conn.id);
    if (!res.destroyed && !res.headersSent) sendLocal(res, errorResponse(ERROR_CATALOG.INTERNAL.status, settings, ctx, rt.vars), ctx);
  });
}

/**
 * Serves a status location on a request that came with an Upgrade header (Node hands those over
 * as raw sockets): answered like an ordinary request, then the connection closes. The event
 * stream is not offered there.
 */
export function serveAdminRaw(rt: ProxyRuntime, handler: AdminHandler, settings: Settings, ctx: RequestContext, socket: Socket): Promise<void> | undefined {
  const refused = refuse(rt, settings, ctx);
  if (refused !== null) {
    sendLocalRaw(socket, refused, ctx);
    return undefined;
  }
  const stats = rt.stats as ProxyStats;
  return stats.combinedSnapshot().then((snap) => {
    sendLocalRaw(socket, adminResponse(handler, snap, settings, ctx, rt.vars), ctx);
  }, () => sendLocalRaw(socket, errorResponse(ERROR_CATALOG.INTERNAL.status, settings, ctx, rt.vars), ctx));
}

/**
 * The dashboard's Server-Sent Events: a snapshot at once, then one per stats tick, each as one
 * `data:` line of JSON. A client that does not keep up skips snapshots (each one is complete),
 * so at most one waits in the socket's buffer. Ends when the client goes or the proxy stops.
 */
function streamEvents(rt: ProxyRuntime, stats: ProxyStats, settings: Settings, ctx: RequestContext, res: ServerResponse): Promise<void> | undefined {
  const headers = ['Content-Type', 'text/event-stream; charset=utf-8', 'Cache-Control', 'no-cache', 'X-Accel-Buffering', 'no'];
  ctx.status = 200;
  applyHeadersFilter(settings, 200, ctx, rt.vars, headers);
  headers.unshift('Server', serverSignature(settings));
  rememberSent(ctx, headers);
  res.writeHead(200, reasonPhrase(200), headers);
  if (ctx.method === 'HEAD') {
    res.end();
    return undefined;
  }
  const write = (text: string): void => {
    ctx.bodyBytesSent += Buffer.byteLength(text);
    res.write(text);
  };
  write(`retry: ${EVENTS_RETRY_MS}\n\n`);
  const send = (snap: StatsSnapshot): void => {
    if (res.writableEnded || res.destroyed || res.writableNeedDrain) return;
    write(`data: ${JSON.stringify(snap)}\n\n`);
  };
  const stop = stats.watch(send, () => {
    if (!res.writableEnded) res.end();
  }, ctx);
  res.once('close', stop);
  return stats.combinedSnapshot().then(send, () => {});
}
