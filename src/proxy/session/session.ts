/**
 * One proxy session: one request (or WebSocket handshake) from routing to its end, the same for
 * every front end (front-end.ts). It answers locally (an error page, `return`, a status
 * location) or runs the attempt loop: the pool yields servers in balancer order, each try goes
 * through a PeerTry (peer-exchange.ts), and what comes back is relayed or tunnelled by the front
 * end. Every failure ends here, in {@link ProxySession.fail}: the one mapping from an error to a
 * status, an error-log line and the access log's status. Unexpected throws go to the safety net
 * (guard.ts).
 */
import { originRefused } from '../../routing/origins.js';
import { runPreaccess } from '../../limits/preaccess.js';
import { Readable } from 'node:stream';
import { ERROR_CATALOG, ProxyError, messageWhile } from '../../core/errors.js';
import type { Peer } from '../../upstream/peer.js';
import { errorResponse, returnResponse } from '../answer/respond.js';
import { reasonPhrase } from '../answer/error-page.js';
import type { LocalResponse } from '../answer/respond.js';
import type { Exchange } from '../client/upstream-client.js';
import { logContext, upstreamUrl } from '../context/log-context.js';
import type { RequestContext, UpstreamAttempt } from '../context/request-context.js';
import type { ErrorLog } from '../../observability/error-log.js';
import type { BodyFilter, Subrequest } from '../filters/ssi/filter.js';
import { runSubrequest } from './subrequest.js';
import { BackgroundFront, backgroundContext } from './background-update.js';
import type { ServerConfig, Settings } from '../../config/types.js';
import { serverRoutes } from '../../routing/server-routes.js';
import { serveFiles } from '../../static/content.js';
import type { FilesOutcome, FilesRequest } from '../../static/content.js';
import { tryFiles } from '../../static/try-files.js';
import { runAttempts } from './attempts.js';
import { requestBodyUnbuffered } from './retry-rules.js';
import { copyStreamedBody, readRequestBody } from '../body/request-body.js';
import { ResponseSpool, fitsBuffers } from '../body/response-spool.js';
import { responseBuffered, responseLimitRate } from '../body/accel-headers.js';
import type { UpstreamMessage } from '../client/upstream-client.js';
import { errnoSuffix } from '../../core/errno.js';
import type { LiveExchange } from './attempts.js';
import type { TryOutcome } from './retry-rules.js';
import type { FrontEnd, ProxySession as SessionForFrontEnds, RelayOut, RouteDecision } from './front-end.js';
import { failRequest } from './guard.js';
import { errorPageFor, sendErrorPage } from './error-pages.js';
import { PeerTry } from './peer-exchange.js';
import { sessionPickKey } from './proxy-route.js';
import { variableTarget } from './variable-target.js';
import type { ExchangeResponse } from './peer-exchange.js';
import { logSendTimeout, PacedTarget, relayBody, watchBodySize } from './body-relay.js';
import type { TimedStream } from './body-relay.js';
import type { ProxyRoute } from './proxy-route.js';
import type { ProxyRuntime } from './proxy-runtime.js';
import { cacheRequestFor, hitResponse } from '../cache/cache-request.js';
import type { CacheRequest } from '../cache/cache-request.js';
import type { CacheWriter } from '../cache/cache-writer.js';
import { knownLength, rangeSlice, relayedNotModified, relayedRange, unsatisfiableResponse } from '../cache/cache-ranges.js';
import type { ByteRange } from '../../static/ranges.js';

/** A try that answered the request (relayed, tunnelled or answered from the cache). */
const TRIED: TryOutcome = Object.freeze({ ok: true });

/** What goes upstream as a try's body: a stream sent once, or a body read whole that can be sent again. */
interface UpstreamBody {
  readonly body: Readable | null;
  readonly replay: { readonly open: () => Readable; readonly length: number } | null;
}

/** No body (most requests): one object, not one per try. */
const NO_BODY: UpstreamBody = Object.freeze({ body: null, replay: null });

/** The `return` codes that set a Location (nginx's ngx_http_send_response). */
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * A body that came whole with the head: nginx has it read already and sends it with its length
 * whatever proxy_request_buffering says (it chunks only a body still being read). Node's parser
 * finishes the packet the head came in within the same I/O callback, so one turn of the event loop
 * (setImmediate) is enough to know.
 */
async function arrivedWhole(body: Readable): Promise<boolean> {
  await new Promise(setImmediate);
  return (body as { complete?: boolean }).complete === true;
}

/** Ends a relayed response, once the cache entry it was written to (if any) is in place. */
function endOut(out: RelayOut, writer: CacheWriter | null): void {
  if (writer === null) {
    if (!out.destroyed) out.end();
    return;
  }
  void writer.settled.then(() => {
    if (!out.destroyed) out.end();
  });
}

/** Each runtime's one Subrequest function (it needs nothing of the session that asks for it). */
const subrequests = new WeakMap<ProxyRuntime, Subrequest>();

function subrequestsOf(rt: ProxyRuntime): Subrequest {
  let run = subrequests.get(rt);
  if (run === undefined) {
    run = (parent, uri, args) => runSubrequest(rt, parent, uri, args, (c, f) => new ProxySession(rt, c, f).start());
    subrequests.set(rt, run);
  }
  return run;
}

export class ProxySession implements SessionForFrontEnds {
  readonly rt: ProxyRuntime;
  readonly ctx: RequestContext;
  readonly front: FrontEnd;
  /** Set once proxying starts. */
  route: ProxyRoute | null = null;
  #current: Exchange | null = null;
  #clientGone = false;
  /** The request was ended for client_body_timeout: the access log keeps its 408. */
  #bodyTimedOut = false;
  #lateLogged = false;
  /** The body outgrew client_max_body_size while streaming: answered 413, the tries are over. */
  #tooLarge = false;
  #body: Readable | null = null;
  /** The proxy cache's part in the request being proxied, null where it takes none. */
  #cache: CacheRequest | null = null;
  /** The one range of the relayed body the client gets (a 206 cut from a response fetched for the cache). */
  #slice: ByteRange | null = null;

  /** A subrequest of this request runs in a session of its own, on the same runtime. */
  get subrequest(): Subrequest {
    return subrequestsOf(this.rt);
  }

  constructor(rt: ProxyRuntime, ctx: RequestContext, front: FrontEnd) {
    this.rt = rt;
    this.ctx = ctx;
    this.front = front;
  }

  /**
   * Runs the session under the safety net: routing, then a local answer or the attempt loop. A
   * throw, or a rejection of what it waits for, ends this request only (guard.ts).
   */
  start(): void {
    try {
      const p = this.#run();
      if (p !== undefined) p.catch((err: unknown) => failRequest(this.rt, this.ctx, this.front, err));
    } catch (err) {
      failRequest(this.rt, this.ctx, this.front, err);
    }
  }

  #run(): Promise<void> | undefined {
    const decision = this.front.route();
    if (decision === null) return undefined;
    return this.#decided(decision);
  }

  #decided(decision: RouteDecision): Promise<void> | undefined {
    const { rt, ctx } = this;
    switch (decision.kind) {
      case 'preaccess':
        return this.#preaccess(decision).then((next) => (next === null ? undefined : this.#decided(next)));
      case 'error':
      case 'return':
        this.#answerDecision(decision);
        return undefined;
      case 'admin':
        if (decision.settings.files.tryFiles !== null) return this.#content(decision);
        return this.front.serveAdmin(decision.handler, decision.settings);
      case 'proxy':
        if (decision.settings.files.tryFiles !== null) return this.#content(decision);
        return this.#proxy(rt.proxyRoute(ctx.location as NonNullable<typeof ctx.location>));
      case 'files':
        return this.#content(decision);
    }
  }

  /**
   * nginx's preaccess phase (limit_req, limit_conn: src/limits/preaccess.ts), which may wait; then
   * what comes after it, or the limit's status. Null: the request ended while it waited.
   */
  async #preaccess(d: RouteDecision & { readonly kind: 'preaccess' }): Promise<RouteDecision | null> {
    const r = await runPreaccess(this.rt, d.settings, this.ctx);
    if (r === null) return null;
    if (r.kind === 'reject') return { kind: 'error', settings: d.settings, status: r.status };
    return d.next();
  }

  #answerDecision(decision: RouteDecision & { readonly kind: 'error' | 'return' }): void {
    const { rt, ctx } = this;
    if (decision.kind === 'return') {
      const { action, settings } = decision;
      const { code, text } = action;
      // nginx (ngx_http_script_return_code): a code of 400 or more without text, and a redirect
      // (its Location set first), end the request with that status, which error_page sees; 444
      // closes the connection.
      if (code >= 400 && code !== 444 && text === null) this.#special(code, settings);
      else if (REDIRECTS.has(code)) {
        // A special response: its own status, whatever error page brought the request here.
        ctx.errStatus = 0;
        const page = returnResponse(action, settings, ctx, rt.vars);
        const at = page.headers.indexOf('Location');
        this.#special(code, settings, () => page, at < 0 ? [] : page.headers.slice(at, at + 2));
      } else this.answer(returnResponse(action, settings, ctx, rt.vars));
      return;
    }
    if (decision.log !== undefined) rt.errorLog(decision.settings).log('error', `${decision.log}${logContext(ctx)}`, ctx.conn.id);
    this.#special(decision.status, decision.settings, () => {
      const page = errorResponse(decision.status, decision.settings, ctx, rt.vars);
      if (decision.headers !== undefined) page.headers.push(...decision.headers);
      return page;
    }, decision.headers);
  }

  /**
   * The one place an error status becomes an answer (nginx's ngx_http_special_response_handler):
   * the error_page of the level for it (error-pages.ts), whose target then goes through the phases
   * again, or nginx's built-in page.
   */
  #special(status: number, settings: Settings | null, builtIn?: () => LocalResponse, kept: readonly string[] = []): void {
    const { rt, ctx } = this;
    if (this.front.started()) return;
    const page = settings === null ? null : errorPageFor(status, settings, ctx);
    if (page === null) {
      this.answer(builtIn === undefined ? errorResponse(status, settings, ctx, rt.vars) : builtIn());
      return;
    }
    ctx.errHeaders = kept;
    const step = sendErrorPage(page, status, ctx, rt.vars);
    if (step.kind === 'local') this.answer(step.response);
    else this.#content(step.decision).catch((err: unknown) => failRequest(rt, ctx, this.front, err));
  }

  /**
   * nginx's precontent and content phases for one location, then for wherever an internal
   * redirect (`index`, `try_files`) leads: try_files first (once per location visited), then the
   * location's content handler (proxy, a status page, or files).
   */
  async #content(first: RouteDecision): Promise<void> {
    const { rt, ctx } = this;
    let d = first;
    let tried: RouteDecision | null = null;
    for (;;) {
      if (d.kind === 'preaccess') {
        const next = await this.#preaccess(d);
        if (next === null) return;
        d = next;
        continue;
      }
      if (d.kind === 'error' || d.kind === 'return') {
        this.#answerDecision(d);
        return;
      }
      const rq: FilesRequest = { ctx, settings: d.settings, vars: rt.vars, log: rt.errorLog(d.settings), subrequest: this.subrequest };
      const tf = d.settings.files.tryFiles;
      if (tf !== null && tried !== d) {
        tried = d;
        const o = await tryFiles(rq, tf);
        if (o.kind !== 'continue') {
          const next = this.#outcome(o, d.settings);
          if (next === null) return;
          d = next;
          continue;
        }
      }
      if (d.kind === 'admin') return this.front.serveAdmin(d.handler, d.settings);
      if (d.kind === 'proxy') return this.#proxy(rt.proxyRoute(ctx.location as NonNullable<typeof ctx.location>));
      const next = this.#outcome(await serveFiles(rq), d.settings);
      if (next === null) return;
      d = next;
    }
  }

  /** Sends what serving files decided; for an internal redirect, where the request goes next. */
  #outcome(o: FilesOutcome, settings: Settings): RouteDecision | null {
    const { ctx } = this;
    switch (o.kind) {
      case 'stream':
        if (this.front.started()) o.response.body?.destroy();
        else this.front.sendStreamed(this, ctx.errStatus === 0 ? o.response : { ...o.response, status: ctx.errStatus, headers: [...o.response.headers, ...ctx.errHeaders] });
        return null;
      case 'local':
        this.answer(o.response);
        return null;
      case 'status':
        this.#special(o.status, settings);
        return null;
      case 'redirect':
        return serverRoutes(ctx.server as ServerConfig).redirect(ctx, o.uri, o.args);
      case 'named':
        return serverRoutes(ctx.server as ServerConfig).named(ctx, o.name);
    }
  }

  /**
   * Streams a body Sluice makes itself (a file) under send_timeout; a client that stops reading
   * for longer is dropped as for a relayed body, and one that leaves closes the file.
   */
  streamBody(body: Readable, out: RelayOut, timed: TimedStream, onChunk: (chunk: Buffer) => void): void {
    const { ctx } = this;
    const settings = ctx.settings as Settings;
    if (out.destroyed) {
      body.destroy();
      return;
    }
    out.once('close', () => {
      if (!body.readableEnded) body.destroy();
    });
    body.once('end', () => {
      if (!out.destroyed) out.end();
    });
    body.once('error', (err: Error) => {
      this.log.log('alert', `${err.message}${logContext(ctx)}`, ctx.conn.id);
      this.front.abort();
    });
    relayBody(body, out, timed, settings.sendTimeout, () => {
      logSendTimeout(this.log, ctx, '');
      body.destroy();
      this.front.abort();
    }, onChunk);
  }

  /**
   * A local answer, unless something of a response has gone out already; an error page's target
   * answers with the error's status (nginx's err_status, error-pages.ts).
   */
  answer(r: LocalResponse): void {
    if (this.front.started()) return;
    const status = this.ctx.errStatus;
    this.front.send(status === 0 || r.drop ? r : { ...r, status, headers: [...r.headers, ...this.ctx.errHeaders] });
  }

  get log(): ErrorLog {
    return this.rt.errorLog(this.route?.settings ?? this.ctx.settings);
  }

  /** The client went away before the session ended: the try in flight is cancelled. */
  clientLeft(): void {
    this.#clientGone = true;
    // proxy_ignore_client_abort: the try in flight goes on (its answer is read and dropped).
    if (this.route?.settings.buffering.ignoreClientAbort !== true) this.#current?.abort();
  }

  /** client_body_timeout expired: the front end closes the request, logged as 408 (nginx logs nothing). */
  bodyTimedOut(): void {
    this.#bodyTimedOut = true;
    if (!this.front.started()) this.ctx.status = ERROR_CATALOG.CLIENT_BODY_TIMEOUT.status;
    this.front.abort(true);
  }

  get clientGone(): boolean {
    return this.#clientGone;
  }

  /**
   * A body without a declared length passed client_max_body_size while it streamed upstream
   * (nginx: "client intended to send too large chunked body"): the try in flight is cancelled and
   * the client gets 413, or loses its connection if a response had begun.
   */
  #bodyTooLarge(received: number, chunk: number): void {
    this.#tooLarge = true;
    this.log.log('error', `${ERROR_CATALOG.CLIENT_BODY_TOO_LARGE.text.replace(' body', ' chunked body')}: ${received}+${chunk} bytes${logContext(this.ctx)}`, this.ctx.conn.id);
    this.#current?.abort();
    if (this.front.started()) this.front.abort();
    else this.answer(errorResponse(ERROR_CATALOG.CLIENT_BODY_TOO_LARGE.status, this.route?.settings ?? this.ctx.settings, this.ctx, this.rt.vars));
  }

  /**
   * A failure after the response head went out (a body cut short): it can only close the client
   * connection or stream; logged once, in nginx's words for the body phase.
   */
  lateFailure(err: ProxyError, peer: Peer): void {
    if (!this.#lateLogged && !this.#clientGone) {
      this.#lateLogged = true;
      const route = this.route as ProxyRoute;
      this.log.log('error', `${messageWhile(err, 'reading upstream')}${logContext(this.ctx, upstreamUrl(route, peer, this.ctx))}`, this.ctx.conn.id);
    }
    this.front.abort();
  }

  /**
   * Relays an upstream response's body to `out` (after the front end sent the head), with
   * backpressure under send_timeout (`timed`: the connection or stream whose timer counts),
   * through `encoder` when the compression filter chose one for the head. The server's
   * connection count ends with the response; a body cut short closes the client side.
   */
  relayBody(x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt, client: RelayOut, timed: TimedStream, noBody: boolean, onChunk: (chunk: Buffer) => void, encoder: BodyFilter | null = null): void {
    const up = x.res;
    const route = this.route as ProxyRoute;
    const { limitRateAfter } = route.settings;
    const limitRate = responseLimitRate(route.settings, up, this.ctx.limitRate);
    const out = limitRate > 0 && !noBody ? new PacedTarget(client, limitRate, limitRateAfter) : client;
    const writer = this.#cacheWriter(up, peer);
    // A buffered body that fits proxy_buffers whole needs no spool (it never reaches the temp
    // file): the relay writes it on without pausing the upstream, the client's write buffer
    // holding what the spool's memory would. Only for a body that goes straight to the client.
    const inMemory = !noBody && out === client && writer === null && encoder === null && this.#slice === null && fitsBuffers(route.settings, up);
    const spool = noBody || inMemory ? null : this.#spool(writer === null ? up : writer.clientSide(up), up, peer);
    const src = spool ?? up;
    // A compressed body has no ranges (rangeStatus), so at most one of the two applies.
    const filtered = noBody ? null : encoder !== null ? encoder.attach(src) : this.#slice === null ? null : src.pipe(rangeSlice(this.#slice));
    // `on`, not `once`: the response is this exchange's own and emits each of these at most once
    // (once() would add a wrapper per listener, per request).
    up.on('end', () => {
      attempt.responseTime = performance.now() - this.ctx.startMs;
      x.release();
      if (filtered === null && spool === null) endOut(out, writer);
    });
    if (spool !== null) {
      spool.once('end', () => {
        if (filtered === null) endOut(out, writer);
      });
      spool.once('error', () => this.front.abort());
      // A client gone mid-body frees the buffers and the temp file at once.
      out.once('close', () => spool.destroy());
    }
    up.on('close', () => {
      x.release();
      if (!up.complete) this.front.abort();
    });
    up.on('aborted', () => this.lateFailure(new ProxyError('UPSTREAM_RESET'), peer));
    if (noBody) {
      up.resume();
      return;
    }
    if (filtered !== null) {
      filtered.once('end', () => endOut(out, writer));
      // zlib never fails on input it compresses; should it, the response can only be cut short.
      filtered.once('error', () => this.front.abort());
      // A client gone mid-body frees the compressor's memory at once.
      out.once('close', () => filtered.destroy());
    }
    // A client that stops reading holds the upstream back for at most send_timeout between two
    // writes; then it is the client that timed out, not the upstream (nginx's wording).
    relayBody(filtered ?? src, out, timed, route.settings.sendTimeout, () => {
      logSendTimeout(this.log, this.ctx, upstreamUrl(route, peer, this.ctx));
      this.front.abort(true);
    }, onChunk, inMemory);
  }

  /**
   * nginx's not_modified filter on a relayed response the cache takes part in (cache-ranges.ts),
   * before the front end's header filters: the status to send (304 for a match), or 0 when a
   * 412 answered instead (the upstream response dropped and not stored, as nginx finalizes it).
   */
  notModifiedStatus(x: ExchangeResponse): number {
    const cache = this.#cache;
    const status = x.res.statusCode ?? 502;
    if (cache === null || this.ctx.errStatus !== 0) return status;
    const route = this.route as ProxyRoute;
    const code = relayedNotModified(this.ctx, route.settings, cache.cacheable, x.res, x.headers);
    if (code === 412) {
      this.#dropForCache(x);
      this.#special(412, route.settings);
      return 0;
    }
    this.ctx.status = code;
    return code;
  }

  /** An upstream response a filter answered for instead: nothing of it is relayed or stored. */
  #dropForCache(x: ExchangeResponse): void {
    this.#cache?.release();
    x.res.resume();
    x.exchange.abort();
    x.release();
    this.#current = null;
  }

  /**
   * nginx's range filter on a relayed response the cache takes part in (cache-ranges.ts), after
   * the front end's other header filters (`filtered`: SSI or compression took the body): the
   * status to send, or 0 when a 416 answered instead; the upstream response is then dropped and
   * nothing is stored (nginx finalizes the request).
   */
  rangeStatus(x: ExchangeResponse, status: number, filtered: boolean): number {
    const cache = this.#cache;
    if (cache === null || status !== 200) return status;
    const route = this.route as ProxyRoute;
    const r = relayedRange(this.ctx, route.settings, cache.cacheable, x.res, x.headers, filtered);
    if (r === null || r.kind === 'whole') return status;
    if (r.kind === 'unsatisfiable') {
      this.#dropForCache(x);
      const page = unsatisfiableResponse(this.ctx, route.settings, this.rt.vars, x.headers, knownLength(x.res.headers));
      this.#special(416, route.settings, () => page);
      return 0;
    }
    this.#slice = r.parts[0] as ByteRange;
    this.ctx.status = 206;
    return 206;
  }

  /**
   * The buffer between the upstream and the client under `proxy_buffering on` (or an upstream's
   * `X-Accel-Buffering: yes`), null when the response streams.
   */
  #spool(src: Readable, up: UpstreamMessage, peer: Peer): ResponseSpool | null {
    const s = (this.route as ProxyRoute).settings;
    if (!responseBuffered(s, up)) return null;
    const b = s.buffering;
    const one = Math.max(s.proxyBufferSize, b.proxyBuffers.size);
    return new ResponseSpool(src, {
      memory: b.proxyBuffers.number * b.proxyBuffers.size,
      tempPath: b.proxyTempPath,
      maxFile: b.maxTempFileSize,
      writeSize: b.tempFileWriteSize ?? 2 * one,
      onFileError: (e) => {
        this.log.log('crit', `${e.syscall ?? 'open'}() "${e.path ?? b.proxyTempPath.path}" failed ${errnoSuffix(e)} while reading upstream${logContext(this.ctx, upstreamUrl(this.route as ProxyRoute, peer, this.ctx))}`, this.ctx.conn.id);
      },
    });
  }

  /**
   * The proxy content handler: the request body, a variable target, the cache, then the attempt
   * loop. Each step that may wait is an async function of its own, entered only when it applies,
   * so that a request with none (no body, a fixed target, no cache) reaches the attempt loop with
   * no await before it (docs/benchmarks.md, "Per-request work, sixth pass").
   */
  #proxy(route: ProxyRoute): Promise<void> | undefined {
    // websocket_allowed_origins: refused before any upstream connection is made.
    const refused = originRefused(route.settings, this.ctx, this.rt.vars);
    if (refused !== null) {
      this.#answerDecision(refused);
      return undefined;
    }
    const again = this.route !== null;
    this.route = route;
    if (again) {
      // An error page's target proxies after an upstream already had the request. A body read
      // whole (proxy_request_buffering) goes again, as nginx sends it; a streamed one went to the
      // first upstream, and the front end watches the client already.
      if (this.ctx.requestBody === null) {
        this.ctx.bodyDropped = true;
        this.#body = null;
      }
    } else {
      const body = this.front.start(this, route);
      if (body === false) return undefined;
      if (body !== null) return this.#withBody(route, body);
    }
    return this.#target(route);
  }

  /** The request has a body: read whole first, or streamed to the tries (proxy_request_buffering). */
  async #withBody(route: ProxyRoute, body: Readable): Promise<void> {
    const limit = route.settings.clientMaxBodySize;
    // An upgrade (WebSocket, HTTP/2 extended CONNECT) is never buffered: its bytes are the tunnel's.
    const buffer = this.front.mode.upgrade === null && (!requestBodyUnbuffered(route, this.ctx) || await arrivedWhole(body));
    if (buffer) {
      if (!(await this.#readBody(body, route))) return;
    } else {
      this.#body = body;
      if (limit > 0) watchBodySize(body, limit, (received, chunk) => this.#bodyTooLarge(received, chunk));
      copyStreamedBody(body, route.settings.clientBodyBufferSize, (copy) => void (this.ctx.streamedBody = copy));
    }
    return this.#target(route);
  }

  /** A proxy_pass with variables resolves its target (a resolver may be asked) first. */
  #target(route: ProxyRoute): Promise<void> | undefined {
    return route.pass.variable === undefined ? this.#cached(route) : this.#variableTarget(route);
  }

  async #variableTarget(route: ProxyRoute): Promise<void> {
    const target = await variableTarget(route, this.ctx, this.rt);
    if ('log' in target) {
      this.front.triesOver?.();
      if (!this.#clientGone) this.log.log('error', `${target.log}${logContext(this.ctx)}`, this.ctx.conn.id);
      this.fail(target.error);
      return;
    }
    this.route = target;
    return this.#cached(target);
  }

  /** The proxy cache's part: a lookup when it takes part, else straight to the attempt loop. */
  #cached(route: ProxyRoute): Promise<void> | undefined {
    const cache = cacheRequestFor(route, this.ctx, this.rt.vars, this.rt.cacheZones, this.front.mode.upgrade !== null);
    this.ctx.cache = cache;
    this.#cache = cache;
    return cache === null ? this.#attempts(route, null) : this.#lookup(route, cache);
  }

  async #lookup(route: ProxyRoute, cache: CacheRequest): Promise<void> {
    if (await cache.lookup(this.ctx, this.rt.vars)) {
      this.front.triesOver?.();
      this.#serveHit(cache, route);
      this.#refreshInBackground(cache, route);
      return;
    }
    return this.#attempts(route, cache);
  }

  /** The attempt loop, then what its failure comes to (the cache's stale entry, or an error page). */
  async #attempts(route: ProxyRoute, cache: CacheRequest | null): Promise<void> {
    // No await (and so no extra turn) unless sticky learn asks its session table.
    const key = sessionPickKey(route, this.ctx, this.rt.vars, this.rt.stickySessions);
    const failure = await runAttempts(this.ctx, route, this, key instanceof Promise ? await key : key);
    if (failure === null) return;
    this.#current = null;
    this.front.triesOver?.();
    // proxy_cache_use_stale error / timeout / invalid_header: the expired entry answers instead.
    if (cache !== null && !this.#clientGone && await cache.useStale(this.ctx, failure)) {
      this.#serveHit(cache, route);
      return;
    }
    cache?.release();
    this.fail(failure);
  }

  /**
   * proxy_cache_background_update: after the STALE answer went to the front end, a background
   * request (background-update.ts) refreshes the entry; its failures end in the error log only.
   */
  #refreshInBackground(cache: CacheRequest, route: ProxyRoute): void {
    const bg = cache.backgroundUpdate();
    if (bg === null) return;
    const ctx = backgroundContext(this.ctx);
    const front = new BackgroundFront();
    new ProxySession(this.rt, ctx, front).refresh(route, bg).catch((err: unknown) => {
      bg.release();
      failRequest(this.rt, ctx, front, err);
    });
  }

  /**
   * The background request's tries (proxy_cache_background_update), its cache part handed over by
   * the request answered STALE: the response goes into the cache; if every try fails, the expired
   * entry stays for the next request to try again (nginx).
   */
  async refresh(route: ProxyRoute, cache: CacheRequest): Promise<void> {
    this.route = route;
    this.ctx.cache = cache;
    this.#cache = cache;
    // No await (and so no extra turn) unless sticky learn asks its session table.
    const key = sessionPickKey(route, this.ctx, this.rt.vars, this.rt.stickySessions);
    const failure = await runAttempts(this.ctx, route, this, key instanceof Promise ? await key : key);
    this.#current = null;
    if (failure !== null) cache.release();
  }

  /**
   * A fresh entry answers the request through the response filters (SSI, gzip) as a relayed
   * response does (a 412 or 416 it gives is nginx's page for that status).
   */
  #serveHit(cache: CacheRequest, route: ProxyRoute): void {
    // A background request's stale or revalidated entry answers nobody.
    if (cache.entry === null) return;
    const r = hitResponse(cache, route, this.ctx, this.rt.vars, { vars: this.rt.vars, log: this.log, subrequest: this.subrequest });
    if (typeof r === 'number') this.#special(r, route.settings);
    else if ('drop' in r) this.#special(r.status, route.settings, () => r);
    else if (this.front.started() || this.#clientGone) r.body?.destroy();
    else this.front.sendStreamed(this, r);
  }

  /**
   * The cache writer for a relayed response (cache-request.ts decides), teeing `up` into the
   * entry before anything reads it; null when the response is not stored.
   */
  #cacheWriter(up: UpstreamMessage, peer: Peer): CacheWriter | null {
    const cache = this.#cache;
    const route = this.route as ProxyRoute;
    if (cache === null) return null;
    const writer = cache.writerFor(up, route, this.ctx, this.rt.vars, responseBuffered(route.settings, up), (e) => {
      this.log.log('crit', `${e.syscall ?? 'write'}() "${e.path ?? cache.zone.config.path}" failed ${errnoSuffix(e)} while reading upstream${logContext(this.ctx, upstreamUrl(route, peer, this.ctx))}`, this.ctx.conn.id);
    });
    writer?.attach(up);
    return writer;
  }

  /**
   * proxy_request_buffering on: the whole body is read (memory, then a temp file) before any
   * upstream is chosen, as nginx does; a client that leaves or stalls meanwhile sends nothing
   * upstream. False when the request ended here.
   */
  async #readBody(body: Readable, route: ProxyRoute): Promise<boolean> {
    const { ctx } = this;
    const s = route.settings;
    this.front.bodyStarted?.();
    // nginx logs 400 for a client that leaves mid-body (before the access log line is written).
    const onGone = (): void => {
      if (!this.#bodyTimedOut && ctx.status === 0) ctx.status = 400;
    };
    const r = await readRequestBody(body, { bufferSize: s.clientBodyBufferSize, limit: s.clientMaxBodySize, settings: s.buffering, onGone });
    switch (r.kind) {
      case 'body':
        // The request may have ended meanwhile (its end disposes of what it holds).
        if (ctx.endMs !== 0) {
          r.body.dispose();
          return false;
        }
        ctx.requestBody = r.body;
        return true;
      case 'too-large':
        this.#bodyTooLarge(r.received, r.chunk);
        return false;
      case 'gone':
        // nginx: "client prematurely closed connection" at info, 400 in the access log; nothing went upstream.
        this.#clientGone = true;
        if (!this.#bodyTimedOut) this.log.log('info', `${ERROR_CATALOG.CLIENT_CLOSED.text}${logContext(ctx)}`, ctx.conn.id);
        this.front.left?.();
        return false;
      case 'file-error': {
        // nginx: the failing system call at crit, then 500.
        const e = r.error;
        this.log.log('crit', `${e.syscall ?? 'open'}() "${e.path ?? s.buffering.clientBodyTempPath.path}" failed ${errnoSuffix(e)}${logContext(ctx)}`, ctx.conn.id);
        this.answer(errorResponse(500, s, ctx, this.rt.vars));
        return false;
      }
    }
  }

  /** What goes upstream as the body, for one try. */
  #upstreamBody(route: ProxyRoute): UpstreamBody {
    const s = route.settings;
    const set = s.buffering.proxySetBody;
    if (set !== null) {
      const bytes = Buffer.from(this.rt.vars.evaluate(set, this.ctx), 'utf8');
      return { body: null, replay: { open: () => Readable.from(bytes.length === 0 ? [] : [bytes], { objectMode: false }), length: bytes.length } };
    }
    if (!s.proxyPassRequestBody || this.ctx.bodyDropped) return NO_BODY;
    const b = this.ctx.requestBody;
    if (b !== null) return { body: null, replay: { open: () => b.open(), length: b.length } };
    return this.#body === null ? NO_BODY : { body: this.#body, replay: null };
  }

  /**
   * The one mapping from a failure to what the client and the logs get: the client left -> 499
   * and nothing sent; otherwise the error's status as nginx's page (502, 504, 500...), with the
   * line nginx writes for "no live upstreams" (each failed try was logged as it happened).
   */
  fail(error: ProxyError): void {
    const { ctx } = this;
    if (this.#tooLarge) return;
    if (error.code === 'CLIENT_CLOSED' || this.#clientGone) {
      if (!this.#bodyTimedOut) ctx.status = 499;
      this.front.left?.();
      return;
    }
    if (error.code === 'NO_LIVE_UPSTREAMS') this.log.log('error', `${error.message}${logContext(ctx)}`, ctx.conn.id);
    this.#special(error.status, this.route?.settings ?? ctx.settings);
  }

  /** @internal (TryHost) */
  tryAbandoned(): boolean {
    return this.#clientGone || this.#tooLarge;
  }

  /** @internal (TryHost) */
  exchangeStarted(ex: Exchange): void {
    this.#current = ex;
  }

  /** @internal (AttemptHost) */
  tryPeer(peer: Peer, attempt: UpstreamAttempt, more: boolean): PeerTry {
    const route = this.route as ProxyRoute;
    const { body, replay } = this.#upstreamBody(route);
    const method = route.settings.buffering.proxyMethod;
    // proxy_cache_convert_head: a HEAD the cache takes part in goes upstream as GET, so that the
    // entry has the body a GET will want.
    const own = this.ctx.method === 'HEAD' && this.#cache?.settings.convertHead === true ? 'GET' : this.ctx.method;
    return new PeerTry({
      rt: this.rt, ctx: this.ctx, route, peer, attempt, more,
      mode: this.front.mode, body, replay, method: method === null ? own : this.rt.vars.evaluate(method, this.ctx),
      host: this,
      onLateError: (err) => this.lateFailure(err, peer),
    });
  }

  /** @internal (AttemptHost) */
  answered(x: LiveExchange, peer: Peer, attempt: UpstreamAttempt): TryOutcome | Promise<TryOutcome> {
    const { front } = this;
    front.triesOver?.();
    if (x.kind === 'upgrade') {
      // A listener left waiting on the client would keep this session, and through it the
      // upstream exchange, alive for as long as a tunnel is open.
      this.#current = null;
      front.tunnel(this, x, peer);
      return TRIED;
    }
    // Asked only when the cache takes part: a plain relayed response goes on without an await.
    if (this.#cache !== null) return this.#cachedOrRelayed(x, peer, attempt);
    this.#relay(x, peer, attempt);
    return TRIED;
  }

  async #cachedOrRelayed(x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt): Promise<TryOutcome> {
    if (!(await this.#answeredFromCache(x, this.route as ProxyRoute))) this.#relay(x, peer, attempt);
    return TRIED;
  }

  /** A response goes to the client, unless proxy_intercept_errors takes it. */
  #relay(x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt): void {
    if (this.#intercepted(x)) return;
    const status = this.ctx.errStatus;
    if (status !== 0) {
      // An error page's target answers with the error's status (nginx's err_status).
      Object.assign(x.res, { statusCode: status, statusMessage: reasonPhrase(status) });
      this.ctx.status = status;
      x.headers.push(...this.ctx.errHeaders);
    }
    // A relayed response keeps its exchange: a client that leaves mid-body cancels it.
    this.front.relay(this, x, peer, attempt);
  }

  /**
   * An upstream response the cache answers instead of relaying: a 304 that revalidates the
   * expired entry (proxy_cache_revalidate: REVALIDATED), or a status proxy_cache_use_stale names
   * (`http_500`...: STALE). The upstream response is dropped as an intercepted one is. Asked
   * only when the cache takes part: a plain relayed response goes on without an await.
   */
  async #answeredFromCache(x: ExchangeResponse, route: ProxyRoute): Promise<boolean> {
    const cache = this.#cache;
    if (cache === null) return false;
    const status = x.res.statusCode ?? 0;
    const answered = cache.revalidates(status) ? await cache.revalidated(this.ctx, x.res, route) : await cache.useStale(this.ctx, status);
    if (!answered) return false;
    x.res.resume();
    x.exchange.abort();
    x.release();
    this.#current = null;
    this.#serveHit(cache, route);
    return true;
  }

  /**
   * proxy_intercept_errors (ngx_http_upstream_intercept_errors): an upstream status of 300 or
   * more that the location has an error_page for is not relayed; its body is left unread and the
   * upstream connection closed (nginx finalizes the upstream request), and the status goes on as
   * a local error would.
   */
  #intercepted(x: ExchangeResponse): boolean {
    const settings = (this.route as ProxyRoute).settings;
    const status = x.res.statusCode ?? 502;
    const { proxyInterceptErrors, errorPages } = settings.core;
    if (!proxyInterceptErrors || status < 300 || errorPages === null || !errorPages.some((p) => p.status === status)) return false;
    this.#cache?.release();
    x.res.resume();
    x.exchange.abort();
    x.release();
    this.#current = null;
    // nginx keeps the upstream's challenge for the page it shows instead.
    const challenge = status === 401 ? x.res.headers['www-authenticate'] : undefined;
    const kept = challenge === undefined ? [] : (Array.isArray(challenge) ? challenge : [challenge]).flatMap((v) => ['WWW-Authenticate', v]);
    this.#special(status, settings, undefined, kept);
    return true;
  }

  /** @internal (AttemptHost) */
  attemptFailed(peer: Peer, error: ProxyError): void {
    if (error.code !== 'CLIENT_CLOSED') this.log.log('error', `${error.message}${logContext(this.ctx, upstreamUrl(this.route as ProxyRoute, peer, this.ctx))}`, this.ctx.conn.id);
  }
}
