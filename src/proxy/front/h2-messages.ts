/**
 * HTTP/2 <-> HTTP/1.1 message mapping for a client stream (RFC 9113 8.2 and 8.3): the request
 * the rest of the proxy sees (pseudo-headers dropped, `:authority` as Host, the cookie fields
 * joined into one, a body of unknown length marked chunked for the HTTP/1.1 upstream), and the
 * response headers a stream may carry (lower-case names, no connection-specific fields).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { constants as h2 } from 'node:http2';
import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { RequestContext } from '../context/request-context.js';
import type { LocalResponse } from '../answer/respond.js';
import { encodeLocalBody } from '../filters/compression.js';
import { rememberSent } from '../headers/response-headers.js';

/** RFC 9113 8.2.2: connection-specific fields never appear in HTTP/2 (Node refuses them too). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

/** The client request of a stream in HTTP/1.1 shape. */
export interface H2Request {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Names as received (HTTP/2 names are lower case), `host` first when it came from :authority. */
  readonly rawHeaders: string[];
  /** `:protocol` of an extended CONNECT (RFC 8441), else null. */
  readonly protocol: string | null;
}

/**
 * Maps the stream's header block. `rawHeaders` is Node's flat list, pseudo-headers included.
 * RFC 9113 8.3.1: an intermediary making an HTTP/1.1 request uses `:authority` as Host.
 */
export function h2Request(rawHeaders: readonly string[], hasBody: boolean): H2Request {
  let method = '';
  let path = '';
  let authority: string | null = null;
  let protocol: string | null = null;
  const raw: string[] = [];
  const cookies: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    if (name.startsWith(':')) {
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':authority') authority = value;
      else if (name === ':protocol') protocol = value;
      continue;
    }
    // RFC 9113 8.2.3: cookie may be split across fields; HTTP/1.1 wants one, joined with "; ".
    if (name === 'cookie') {
      cookies.push(value);
      continue;
    }
    if (name === 'host' && authority !== null) continue;
    raw.push(name, value);
  }
  if (authority !== null) {
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i] === 'host') {
        raw.splice(i, 2);
        i -= 2;
      }
    }
    raw.unshift('host', authority);
  }
  if (cookies.length > 0) raw.push('cookie', cookies.join('; '));
  const headers: IncomingHttpHeaders = {};
  const bag = headers as Record<string, string | string[] | undefined>;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const prev = bag[name];
    if (name === 'set-cookie') bag[name] = [...((prev as string[] | undefined) ?? []), value];
    else bag[name] = prev === undefined ? value : `${prev as string}, ${value}`;
  }
  // A body without content-length is streamed to the HTTP/1.1 upstream chunked (it is the end of
  // the stream that ends it in HTTP/2); the marker is for the request forwarding code only.
  if (hasBody && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
  return { method, path, headers, rawHeaders: raw, protocol };
}

/** Flat HTTP/1.1-style response headers as a stream's header object, with `:status`. */
export function h2ResponseHeaders(status: number, flat: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { [h2.HTTP2_HEADER_STATUS]: status };
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    if (CONNECTION_SPECIFIC.has(name) || name.startsWith(':')) continue;
    const value = flat[i + 1] as string;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [String(prev), value];
  }
  return out;
}

/** Roughly what a header block costs on the wire, for $bytes_sent / $request_length (HPACK is not counted exactly). */
export function headerBytes(flat: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < flat.length; i += 2) n += (flat[i] as string).length + (flat[i + 1] as string).length + 4;
  return n;
}

/** Sends a local response (a return, an error page) on a stream. */
export function sendLocalH2(stream: ServerHttp2Stream, r: LocalResponse, ctx: RequestContext | null): void {
  if (stream.destroyed || stream.closed) return;
  if (r.drop) {
    // nginx's 444 closes without a response: on HTTP/2 the stream is reset.
    stream.close(h2.NGHTTP2_CANCEL);
    return;
  }
  let body: Buffer = Buffer.from(r.body, 'utf8');
  const flat = ['Server', r.server ?? 'sluice', ...r.headers, 'Content-Length', String(body.length)];
  const head = ctx?.method === 'HEAD';
  if (ctx) {
    body = encodeLocalBody(ctx, r.status, flat, body);
    ctx.status = r.status;
    rememberSent(ctx, flat);
    ctx.bodyBytesSent = head ? 0 : body.length;
    ctx.bytesSent += headerBytes(flat) + (head ? 0 : body.length);
  }
  try {
    stream.respond(h2ResponseHeaders(r.status, flat), { endStream: head || body.length === 0 });
    if (!head && body.length > 0) stream.end(body);
  } catch {
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  }
}
