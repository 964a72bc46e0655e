import type { AdminHandler, Listen, ReturnAction, ServerConfig, Settings } from '../config/types.js';
import { ERROR_CATALOG } from '../core/errors.js';
import { events } from '../observability/events.js';
import { declaredBodySize } from '../proxy/context/request-context.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import { accessDenied } from './access.js';
import { applyRealIp } from './realip.js';
import { LocationLevel } from './locations.js';
import { ServerGroup } from './server-select.js';
import { normalizeUri } from './uri.js';

/** What the router decided for one request. */
export type RouteDecision =
  | { readonly kind: 'proxy'; readonly settings: Settings }
  | { readonly kind: 'return'; readonly settings: Settings; readonly action: ReturnAction }
  /** `log`: a line for the error log at `error` (nginx's "access forbidden by rule"). */
  | { readonly kind: 'error'; readonly settings: Settings; readonly status: number; readonly log?: string }
  /** A status location (stub_status, sluice_metrics, sluice_status, sluice_dashboard). */
  | { readonly kind: 'admin'; readonly settings: Settings; readonly handler: AdminHandler };

/** nginx's access phase, after the rewrite phase (so `return` is answered before allow/deny). */
function forbidden(settings: Settings, ctx: RequestContext): RouteDecision | null {
  if (settings.access.length === 0 || !accessDenied(settings.access, ctx.conn, ctx.realIp)) return null;
  return { kind: 'error', settings, status: 403, log: 'access forbidden by rule' };
}

/**
 * nginx's find-config phase refuses a declared body over `client_max_body_size` of the level that
 * serves the request, before rewrite and access (ngx_http_core_find_config_phase): 413, logged at
 * error. A body without Content-Length is counted as it streams (session/body-relay.ts).
 */
function bodyTooLarge(settings: Settings, ctx: RequestContext): RouteDecision | null {
  const declared = declaredBodySize(ctx);
  if (settings.clientMaxBodySize === 0 || declared <= settings.clientMaxBodySize) return null;
  return { kind: 'error', settings, status: ERROR_CATALOG.CLIENT_BODY_TOO_LARGE.status, log: `${ERROR_CATALOG.CLIENT_BODY_TOO_LARGE.text}: ${declared} bytes` };
}

/** The servers behind one bound socket (a listen key), with their location trees compiled. */
export class ListenerRoutes {
  readonly group: ServerGroup;
  readonly #levels = new Map<ServerConfig, LocationLevel>();

  constructor(servers: readonly ServerConfig[], defaultServer: ServerConfig) {
    this.group = new ServerGroup(servers, defaultServer);
    for (const s of servers) this.#levels.set(s, new LocationLevel(s.locations));
  }

  /**
   * Host -> server -> (server-level return) -> location, filling the context as it goes.
   * nginx answers a URI it cannot normalise with 400 and a request no location takes with 404.
   */
  route(ctx: RequestContext): RouteDecision {
    const decision = this.#decide(ctx);
    if (events.requestStart.hasSubscribers) events.requestStart.publish({ ctx });
    return decision;
  }

  /**
   * A request refused before routing (nginx's checks of the request head): the default server of
   * the address answers it, as nginx's does when it refuses a head.
   */
  refuse(ctx: RequestContext, status: number): RouteDecision & { readonly kind: 'error' } {
    ctx.server = this.group.defaultServer;
    ctx.settings = ctx.server.settings;
    if (events.requestStart.hasSubscribers) events.requestStart.publish({ ctx });
    return { kind: 'error', settings: ctx.server.settings, status };
  }

  #decide(ctx: RequestContext): RouteDecision {
    if (ctx.host === null || (ctx.headers.host === undefined && ctx.httpVersion !== '1.0' && ctx.httpVersion !== '0.9')) {
      // nginx: "client sent invalid host header" / "client sent HTTP/1.1 request without "Host"
      // header", answered by the default server.
      ctx.server = this.group.defaultServer;
      ctx.settings = ctx.server.settings;
      return { kind: 'error', settings: ctx.server.settings, status: 400 };
    }
    const sm = this.group.select(ctx.host);
    const server = sm.server;
    ctx.server = server;
    ctx.settings = server.settings;
    if (sm.captures.length > 0) {
      ctx.captures = sm.captures;
      ctx.namedCaptures = sm.named;
    }
    applyRealIp(server.settings, ctx);
    // nginx parses the request line before it knows the virtual server: the default server's
    // merge_slashes applies.
    const uri = normalizeUri(ctx.uri, this.group.defaultServer.settings.core.mergeSlashes);
    if (uri === null) return { kind: 'error', settings: server.settings, status: 400 };
    ctx.uri = uri;
    if (server.settings.returnAction) return { kind: 'return', settings: server.settings, action: server.settings.returnAction };
    const level = this.#levels.get(server) as LocationLevel;
    const m = level.find(uri);
    if (!m) {
      const denied = bodyTooLarge(server.settings, ctx) ?? forbidden(server.settings, ctx);
      if (denied) return denied;
      // nginx: stub_status written at server level serves what no location takes.
      if (server.settings.adminHandler) return { kind: 'admin', settings: server.settings, handler: server.settings.adminHandler };
      return { kind: 'error', settings: server.settings, status: 404 };
    }
    const settings = m.location.settings;
    ctx.location = m.location;
    ctx.settings = settings;
    if (m.captures.length > 0) {
      ctx.captures = m.captures;
      ctx.namedCaptures = { ...ctx.namedCaptures, ...m.named };
    }
    applyRealIp(settings, ctx);
    const large = bodyTooLarge(settings, ctx);
    if (large) return large;
    if (settings.returnAction) return { kind: 'return', settings, action: settings.returnAction };
    const denied = forbidden(settings, ctx);
    if (denied) return denied;
    if (settings.proxyPass) {
      ctx.proxyPass = settings.proxyPass;
      return { kind: 'proxy', settings };
    }
    if (settings.adminHandler) return { kind: 'admin', settings, handler: settings.adminHandler };
    // A location that neither proxies nor returns would serve files in nginx; Sluice has none.
    return { kind: 'error', settings, status: 404 };
  }
}

/** Groups servers by listen key; the default server is the `default_server` one or the first. */
export function groupServers(servers: readonly ServerConfig[]): Map<string, { listen: Listen; routes: ListenerRoutes }> {
  const byKey = new Map<string, { listen: Listen; servers: ServerConfig[]; def: ServerConfig | null }>();
  for (const s of servers) {
    for (const l of s.listens) {
      let g = byKey.get(l.key);
      if (!g) {
        g = { listen: l, servers: [], def: null };
        byKey.set(l.key, g);
      }
      if (!g.servers.includes(s)) g.servers.push(s);
      if (l.defaultServer) g.def = s;
    }
  }
  const out = new Map<string, { listen: Listen; routes: ListenerRoutes }>();
  for (const [key, g] of byKey) out.set(key, { listen: g.listen, routes: new ListenerRoutes(g.servers, g.def ?? (g.servers[0] as ServerConfig)) });
  return out;
}
