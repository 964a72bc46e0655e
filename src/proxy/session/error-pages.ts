/**
 * `error_page`: what nginx's ngx_http_special_response_handler and ngx_http_send_error_page do
 * when a request ends with an error status (a local 404/403/413..., a `return` code without
 * text, a 502/504 from the upstream, or an upstream answer proxy_intercept_errors takes). The
 * session (session.ts) calls {@link errorPageFor} at the one place a status becomes an answer.
 */
import type { ErrorPage, ServerConfig, Settings } from '../../config/types.js';
import { MAX_URI_CHANGES, serverRoutes } from '../../routing/server-routes.js';
import type { RouteDecision } from '../../routing/decision.js';
import { returnResponse } from '../answer/respond.js';
import type { LocalResponse } from '../answer/respond.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';

/** Where an error page sends the request: on through the phases, or a redirect to answer. */
export type ErrorPageStep =
  | { readonly kind: 'decision'; readonly decision: RouteDecision }
  | { readonly kind: 'local'; readonly response: LocalResponse };

/** The statuses an `=code` may give a URL target; any other makes it nginx's 302. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * The error_page line of `settings` for `status`, or null for nginx's built-in page. As in nginx,
 * a request uses error pages once (the first level with any error_page marks it, matched or not)
 * unless recursive_error_pages is on, and never after the internal redirect limit was hit.
 */
export function errorPageFor(status: number, settings: Settings, ctx: RequestContext): ErrorPage | null {
  // nginx: err_status is the error; the built-in page is sent with its own status.
  ctx.errStatus = 0;
  const pages = settings.core.errorPages;
  if (pages === null || ctx.errorPage || ctx.uriChanges > MAX_URI_CHANGES) return null;
  if (!settings.core.recursiveErrorPages) ctx.errorPage = true;
  for (const p of pages) if (p.status === status) return p;
  return null;
}

/**
 * ngx_http_send_error_page: a URI is an internal redirect (the method becomes GET, HEAD stays
 * HEAD), `@name` goes on in that named location with the method kept, anything else is a URL
 * answered with a 302 (or the line's 301/303/307/308). The answer's status is set here in
 * `ctx.errStatus`; the session applies it to whatever the target answers.
 */
export function sendErrorPage(page: ErrorPage, status: number, ctx: RequestContext, vars: Variables): ErrorPageStep {
  ctx.errStatus = page.overwrite === -1 ? status : page.overwrite;
  const target = vars.evaluate(page.target, ctx);
  const routes = serverRoutes(ctx.server as ServerConfig);
  if (target.startsWith('/')) {
    let uri = target;
    let args = page.args;
    if (page.target.constant === null) {
      // ngx_http_split_args: a URI built from variables is split at run time.
      const q = target.indexOf('?');
      if (q >= 0) {
        uri = target.slice(0, q);
        args = target.slice(q + 1);
      }
    }
    if (ctx.method !== 'HEAD') ctx.method = 'GET';
    return { kind: 'decision', decision: routes.redirect(ctx, uri, args) };
  }
  if (target.startsWith('@')) {
    return { kind: 'decision', decision: routes.named(ctx, target) };
  }
  const code = REDIRECTS.has(page.overwrite) ? page.overwrite : 302;
  ctx.errStatus = 0;
  const settings = ctx.settings as Settings;
  return { kind: 'local', response: returnResponse({ code, text: page.target }, settings, ctx, vars) };
}
