/**
 * proxy_cache_background_update (ngx_http_upstream_cache_background_update): while the client
 * gets the expired entry (STALE), a background request refreshes it. nginx makes it a clone
 * subrequest that goes on at the location's content phase; here it is a session of its own with
 * a copy of the request as routed (URI, location, captures, `set` values) and this front end,
 * which answers nobody: the response goes into the cache (the session's cache writer) and is
 * otherwise drained. Like nginx's background subrequests it is not access-logged, and the client's
 * response never waits for it.
 */
import { Writable } from 'node:stream';
import { ProxyError } from '../../core/errors.js';
import type { Peer } from '../../upstream/peer.js';
import type { StreamedResponse } from '../answer/streamed.js';
import { RequestContext } from '../context/request-context.js';
import type { UpstreamAttempt } from '../context/request-context.js';
import { NO_UPGRADE, type ForwardMode } from '../headers/upstream-request.js';
import type { FrontEnd, ProxySession } from './front-end.js';
import { noTunnel } from './front-end.js';
import type { ExchangeResponse } from './peer-exchange.js';
import { UNTIMED } from './subrequest.js';

/**
 * The background request: the client's request as routed, without its body (nginx's clone would
 * send the body again; Sluice's may be gone with the client's request: docs/differences-from-nginx.md).
 */
export function backgroundContext(main: RequestContext): RequestContext {
  const ctx = new RequestContext(main.conn, main.method, main.rawUri, main.httpVersion, main.headers, main.rawHeaders, performance.now());
  ctx.parent = main;
  ctx.bodyDropped = true;
  // No client to pace (limit_rate): the body goes into the cache as fast as it comes.
  ctx.limitRate = 0;
  ctx.realIp = main.realIp;
  ctx.realPort = main.realPort;
  ctx.server = main.server;
  ctx.location = main.location;
  ctx.settings = main.settings;
  ctx.uri = main.uri;
  ctx.args = main.args;
  ctx.hasArgs = main.hasArgs;
  ctx.captures = main.captures;
  ctx.namedCaptures = main.namedCaptures;
  ctx.proxyPass = main.proxyPass;
  ctx.internal = main.internal;
  ctx.unparsedUri = main.unparsedUri;
  ctx.validLocation = main.validLocation;
  ctx.setValues = main.setValues === null ? null : [...main.setValues];
  return ctx;
}

/** A sink for the background request's body: the cache writer has its copy already. */
function drain(): Writable {
  return new Writable({ write: (_chunk: Buffer, _enc, done) => done() });
}

/** The front end of a background request: whatever it is answered goes nowhere. */
export class BackgroundFront implements FrontEnd {
  readonly mode: ForwardMode = NO_UPGRADE;

  /** Never routed: the session goes straight to the location's upstream (ProxySession.refresh). */
  route(): null {
    return null;
  }

  serveAdmin(): undefined {
    return undefined;
  }

  start(): null {
    return null;
  }

  checkSwitch(): ProxyError {
    return new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE');
  }

  started(): boolean {
    return false;
  }

  send(): void {}

  sendStreamed(_s: ProxySession, r: StreamedResponse): void {
    r.body?.destroy();
  }

  relay(s: ProxySession, x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt): void {
    const status = x.res.statusCode ?? 502;
    s.relayBody(x, peer, attempt, drain(), UNTIMED, status === 204 || status === 304, noop);
  }

  tunnel(): never {
    return noTunnel();
  }

  abort(): void {}
}

function noop(): void {}
