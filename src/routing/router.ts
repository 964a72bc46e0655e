import type { Listen, ServerConfig } from '../config/types.js';
import { events } from '../observability/events.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import type { RouteDecision } from './decision.js';
import { applyRealIp } from './realip.js';
import { ServerGroup } from './server-select.js';
import { serverRoutes } from './server-routes.js';
import type { ScriptHost } from './rewrite-run.js';
import { normalizeUri } from './uri.js';

export type { RouteDecision } from './decision.js';

/** The servers behind one bound socket (a listen key), with their location trees compiled. */
export class ListenerRoutes {
  readonly group: ServerGroup;

  constructor(servers: readonly ServerConfig[], defaultServer: ServerConfig, host: ScriptHost) {
    this.group = new ServerGroup(servers, defaultServer);
    for (const s of servers) serverRoutes(s, host);
  }

  /**
   * Host -> server -> (server-level return) -> location, filling the context as it goes.
   * nginx answers a URI it cannot normalise with 400; the rest is the server's (server-routes.ts).
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
    if (uri === null) {
      // nginx never set r->uri nor r->unparsed_uri for a URI it could not parse: $uri logs
      // empty, $request_uri "-".
      ctx.uri = '';
      ctx.badUri = true;
      return { kind: 'error', settings: server.settings, status: 400 };
    }
    // The same text usually: the string the context has is kept (an open tunnel keeps one, not two).
    if (uri !== ctx.uri) ctx.uri = uri;
    return serverRoutes(server).locate(ctx);
  }
}

/** Groups servers by listen key; the default server is the `default_server` one or the first. */
export function groupServers(servers: readonly ServerConfig[], host: ScriptHost): Map<string, { listen: Listen; routes: ListenerRoutes }> {
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
  for (const [key, g] of byKey) out.set(key, { listen: g.listen, routes: new ListenerRoutes(g.servers, g.def ?? (g.servers[0] as ServerConfig), host) });
  return out;
}
