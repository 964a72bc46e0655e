/**
 * Subrequests (nginx's ngx_http_subrequest), for SSI's `include`: a GET of another URI of the same
 * server, run through the server's phases like an internal redirect (server rewrites, locations,
 * `internal` ones too, proxy_pass, static files, error pages) in a session of its own, with the
 * client's headers and no body. Its front end hands the response back instead of sending it: the
 * status, and the body as a stream the parent's filter splices in place. Subrequests are not
 * compressed (the parent is, as a whole) nor access-logged (`log_subrequest off`).
 */
import { PassThrough, Readable } from 'node:stream';
import type { AdminHandler, ServerConfig, Settings } from '../../config/types.js';
import { ProxyError } from '../../core/errors.js';
import { serverRoutes } from '../../routing/server-routes.js';
import type { Peer } from '../../upstream/peer.js';
import type { LocalResponse } from '../answer/respond.js';
import { errorResponse } from '../answer/respond.js';
import type { StreamedResponse } from '../answer/streamed.js';
import { RequestContext } from '../context/request-context.js';
import type { UpstreamAttempt } from '../context/request-context.js';
import type { SsiDeps, Subrequest, SubResponse } from '../filters/ssi/filter.js';
import { responseFilters, ssiFilter, ssiHeaderFilter } from '../filters/ssi/filter.js';
import { NO_UPGRADE, type ForwardMode } from '../headers/upstream-request.js';
import type { RouteDecision } from '../../routing/router.js';
import type { TimedStream } from './body-relay.js';
import type { FrontEnd, ProxySession } from './front-end.js';
import { noTunnel } from './front-end.js';
import type { ExchangeResponse } from './peer-exchange.js';
import type { ProxyRuntime } from './proxy-runtime.js';

/** nginx's NGX_HTTP_MAX_SUBREQUESTS nesting: 50 levels below the client's request. */
const MAX_DEPTH = 50;

/** A subrequest's body has no client connection to time: the parent's send_timeout covers it. */
export const UNTIMED: TimedStream = { destroyed: false, setTimeout: () => undefined, on: () => undefined, removeListener: () => undefined };

function depthOf(ctx: RequestContext): number {
  let n = 0;
  for (let c = ctx.parent; c !== null; c = c.parent) n++;
  return n;
}

/**
 * Starts a subrequest of `parent` for `uri` (decoded) and `args`; resolves with its response once
 * its head is decided, rejects when it cannot run (nested too deep) or ends without one.
 */
export function runSubrequest(rt: ProxyRuntime, parent: RequestContext, uri: string, args: string | null, start: (ctx: RequestContext, front: FrontEnd) => void): Promise<SubResponse> {
  if (depthOf(parent) >= MAX_DEPTH) return Promise.reject(new Error(`subrequests cycle while processing "${uri}"`));
  const ctx = new RequestContext(parent.conn, 'GET', parent.rawUri, parent.httpVersion, parent.headers, parent.rawHeaders, performance.now());
  ctx.parent = parent;
  ctx.bodyDropped = true;
  ctx.realIp = parent.realIp;
  ctx.realPort = parent.realPort;
  ctx.server = parent.server;
  ctx.settings = parent.server?.settings ?? parent.settings;
  const nested: Subrequest = (p, u, a) => runSubrequest(rt, p, u, a, start);
  return new Promise((resolve, reject) => start(ctx, new SubrequestFront(rt, ctx, { uri, args, nested }, resolve, reject)));
}

class SubrequestFront implements FrontEnd {
  readonly mode: ForwardMode = NO_UPGRADE;
  readonly #rt: ProxyRuntime;
  readonly #ctx: RequestContext;
  readonly #uri: string;
  readonly #args: string | null;
  /** Subrequests of this one (an include in an included page). */
  readonly #nested: Subrequest;
  readonly #resolve: (r: SubResponse) => void;
  readonly #reject: (err: Error) => void;
  #answered = false;
  #body: Readable | null = null;

  constructor(rt: ProxyRuntime, ctx: RequestContext, target: { uri: string; args: string | null; nested: Subrequest }, resolve: (r: SubResponse) => void, reject: (err: Error) => void) {
    this.#rt = rt;
    this.#ctx = ctx;
    this.#uri = target.uri;
    this.#args = target.args;
    this.#nested = target.nested;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  #answer(status: number, body: Readable | null, kind: SubResponse['kind']): void {
    this.#answered = true;
    this.#ctx.status = status;
    this.#body = body;
    this.#resolve({ status, body, kind, ctx: this.#ctx });
  }

  started(): boolean {
    return this.#answered;
  }

  route(): RouteDecision | null {
    const ctx = this.#ctx;
    if (ctx.server === null) return null;
    return serverRoutes(ctx.server as ServerConfig).redirect(ctx, this.#uri, this.#args);
  }

  /** A status location as an include target is not served: 404 (docs/differences-from-nginx.md). */
  serveAdmin(_handler: AdminHandler, settings: Settings): undefined {
    this.send(errorResponse(404, settings, this.#ctx, this.#rt.vars));
    return undefined;
  }

  start(): null {
    return null;
  }

  checkSwitch(): ProxyError {
    return new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE');
  }

  send(r: LocalResponse): void {
    if (this.#answered) return;
    if (r.drop) {
      this.#answer(444, null, 'local');
      return;
    }
    const bytes = Buffer.from(r.body, 'utf8');
    let body: Readable | null = bytes.length === 0 ? null : Readable.from([bytes], { objectMode: false });
    const headers = [...r.headers];
    const settings = this.#ctx.settings;
    if (body !== null && ssiHeaderFilter(this.#ctx, settings, headers)) body = ssiFilter(this.#ctx, settings as Settings, this.#deps()).attach(body);
    this.#answer(r.status, body, 'local');
  }

  sendStreamed(_s: ProxySession, r: StreamedResponse): void {
    if (this.#answered) {
      r.body?.destroy();
      return;
    }
    this.#answer(r.status, r.body, 'file');
  }

  relay(s: ProxySession, x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt): void {
    const ctx = this.#ctx;
    const status = x.res.statusCode ?? 502;
    const filter = responseFilters(ctx, ctx.settings, status, x.headers, this.#deps());
    const out = new PassThrough();
    // The parent stopped reading (its client left, or it is done with this body): the upstream read is cancelled.
    out.once('close', () => {
      if (!out.writableFinished) s.clientLeft();
    });
    s.relayBody(x, peer, attempt, out, UNTIMED, status === 204 || status === 304, () => undefined, filter);
    this.#answer(status, out, 'proxied');
  }

  #deps(): SsiDeps {
    return { vars: this.#rt.vars, log: this.#rt.errorLog(this.#ctx.settings), subrequest: this.#nested };
  }

  tunnel(): never {
    return noTunnel();
  }

  abort(): void {
    if (!this.#answered) {
      this.#answered = true;
      this.#reject(new Error(`subrequest "${this.#uri}" failed`));
    } else this.#body?.destroy();
  }

  left(): void {
    this.abort();
  }
}
