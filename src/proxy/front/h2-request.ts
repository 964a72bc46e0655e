/**
 * The HTTP/2 front end for ordinary requests: a client stream proxied to an HTTP/1.1 upstream by a
 * proxy session, with the message mapped at both ends (h2-messages.ts). The request body is the
 * stream itself, counted once it flows and watched by client_body_timeout.
 */
import { constants as h2 } from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { ProxyError } from '../../core/errors.js';
import type { RouteDecision } from '../../routing/router.js';
import { errorResponse } from '../answer/respond.js';
import { RequestContext } from '../context/request-context.js';
import { NO_UPGRADE } from '../headers/upstream-request.js';
import type { ForwardMode } from '../headers/upstream-request.js';
import { watchBodyReads } from '../session/body-relay.js';
import type { FrontEnd } from '../session/front-end.js';
import { noTunnel } from '../session/front-end.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { ProxySession } from '../session/session.js';
import { H2Front } from './h2-front.js';
import type { H2Request as H2Message } from './h2-messages.js';
import { headerBytes } from './h2-messages.js';

/** An ordinary request on a client stream (anything but an extended CONNECT). */
export function handleH2Request(rt: ProxyRuntime, socket: TLSSocket, stream: ServerHttp2Stream, m: H2Message): void {
  const ctx = new RequestContext(rt.connInfo(socket), m.method, m.path, '2.0', m.headers, m.rawHeaders, performance.now());
  ctx.bytesReceived = headerBytes(m.rawHeaders);
  stream.once('close', () => {
    ctx.endMs = performance.now();
    if (ctx.status === 0) ctx.status = 499;
    rt.finish(ctx);
  });
  new ProxySession(rt, ctx, new H2RequestFront(rt, ctx, socket, stream, !stream.endAfterHeaders)).start();
}

export class H2RequestFront extends H2Front implements FrontEnd {
  readonly mode: ForwardMode = NO_UPGRADE;
  readonly #hasBody: boolean;
  #counting = false;

  constructor(rt: ProxyRuntime, ctx: RequestContext, socket: TLSSocket, stream: ServerHttp2Stream, hasBody: boolean) {
    super(rt, ctx, socket, stream);
    this.#hasBody = hasBody;
  }

  route(): RouteDecision | null {
    if (this.ctx.method === 'CONNECT') {
      // A plain CONNECT (no :protocol) asks for a forward proxy: nginx answers 405.
      this.rt.routesFor(this.socket).route(this.ctx);
      this.send(errorResponse(405, this.ctx.settings, this.ctx, this.rt.vars));
      return null;
    }
    return this.decide();
  }

  start(s: ProxySession, route: ProxyRoute): Readable | null {
    const stream = this.stream;
    stream.once('close', () => {
      if (stream.writableFinished && stream.rstCode === h2.NGHTTP2_NO_ERROR) return;
      s.clientLeft();
    });
    if (!this.#hasBody) return null;
    // client_body_timeout: the stream is reset (nginx terminates the request, 408 in the log).
    const stop = watchBodyReads(stream, route.settings.clientBodyTimeout, () => s.bodyTimedOut());
    stream.once('close', stop);
    return stream;
  }

  override abort(): void {
    // After client_body_timeout the stream is cancelled rather than failed.
    if (!this.stream.destroyed) this.stream.close(this.ctx.status === 408 ? h2.NGHTTP2_CANCEL : h2.NGHTTP2_INTERNAL_ERROR);
  }

  /** The body is counted once it flows to an upstream (a listener any earlier would start the flow). */
  bodyStarted(): void {
    if (this.#counting) return;
    this.#counting = true;
    const ctx = this.ctx;
    this.stream.on('data', (chunk: Buffer) => void (ctx.bytesReceived += chunk.length));
  }

  checkSwitch(): ProxyError {
    return new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE');
  }

  tunnel(): never {
    return noTunnel();
  }
}
