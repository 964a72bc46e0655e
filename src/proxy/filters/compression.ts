/**
 * The compression response filter: nginx's gzip header and body filters (and ngx_brotli's, run
 * first, as a module loaded after gzip runs first in nginx). {@link compressionFilter} judges a
 * response head as nginx does and rewrites it in place; the {@link ResponseEncoder} it returns
 * compresses the body as a stream with backpressure (Node's zlib), or a whole local answer at
 * once. Every front end calls it where it decides the head: proxied responses (h1, h2, the h1
 * upgrade path's refusals), local answers (error pages, `return`), and static files.
 */
import type { Readable, Transform, TransformOptions } from 'node:stream';
import { brotliCompressSync, constants as z, createBrotliCompress, createGzip, gzipSync } from 'node:zlib';
import type { BrotliOptions, ZlibOptions } from 'node:zlib';
import type { CompressionSettings, MimeTypes, Settings } from '../../config/types.js';
import type { CompressedBody, RequestContext } from '../context/request-context.js';
import { brotliOk, gzipOk } from './negotiation.js';

export type ContentCoding = 'gzip' | 'br';

/** nginx compresses only these (ngx_http_gzip_header_filter, ngx_brotli alike): never a 206, a 304, a redirect or an error page of another status. */
const COMPRESSIBLE_STATUSES: ReadonlySet<number> = new Set([200, 403, 404]);

/** zlib's smallest output chunk (Node refuses less). */
const MIN_CHUNK = 64;

/** nginx's zlib defaults: MAX_WBITS and MAX_MEM_LEVEL - 1. */
const GZIP_WBITS = 15;
const GZIP_MEMLEVEL = 8;
/** ngx_brotli's default window (brotli_window 512k) and the smallest Brotli window. */
const BROTLI_LGWIN = 19;
const BROTLI_MIN_LGWIN = 10;

/**
 * The MIME type as nginx compares it with a types list: lower-cased, cut before the `;` only when
 * a `charset=` parameter follows (ngx_http_upstream_copy_content_type), so `text/html;
 * charset=utf-8` is text/html while `text/html; q=1` is not.
 */
export function contentTypeKey(value: string): string {
  for (let i = value.indexOf(';'); i !== -1; i = value.indexOf(';', i + 1)) {
    let p = i + 1;
    while (value[p] === ' ') p++;
    if (p === value.length) break;
    if (value.slice(p, p + 8).toLowerCase() === 'charset=') return value.slice(0, i).toLowerCase();
  }
  return value.toLowerCase();
}

/** ngx_http_test_content_type: `*` matches anything (even no Content-Type), a list needs one. */
export function typeMatches(types: MimeTypes, contentType: string | undefined): boolean {
  if (types === '*') return true;
  return contentType !== undefined && contentType !== '' && types.has(contentTypeKey(contentType));
}

/** The last value of a header in a flat list (nginx keeps the last Content-Type, ETag...). */
export function lastValue(headers: readonly string[], lower: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === lower) v = headers[i + 1] as string;
  return v;
}

/** content_length_n: the Content-Length when there is a valid one, else -1 (a chunked or close-delimited body). */
function contentLength(headers: readonly string[]): number {
  const v = lastValue(headers, 'content-length');
  return v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : -1;
}

export function removeAll(headers: string[], lower: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if ((headers[i] as string).toLowerCase() === lower) headers.splice(i, 2);
}

/**
 * ngx_http_weak_etag (nginx 1.7.3+): a compressed body is not byte-identical to the resource, so
 * a strong ETag becomes weak (RFC 9110 8.8.1); one that is not a quoted string is dropped.
 */
export function weakenEtag(headers: string[]): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if ((headers[i] as string).toLowerCase() !== 'etag') continue;
    const v = headers[i + 1] as string;
    if (v.length > 2 && v.startsWith('W/')) return;
    if (v.startsWith('"')) headers[i + 1] = `W/${v}`;
    else headers.splice(i, 2);
    return;
  }
}

/**
 * nginx writes its `Vary: Accept-Encoding` among the headers it makes itself, before those it
 * passes on (an upstream's own Vary stays, after it).
 */
function addVary(headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() === 'vary') {
      headers.splice(i, 0, 'Vary', 'Accept-Encoding');
      return;
    }
  }
  headers.push('Vary', 'Accept-Encoding');
}

/** What ngx_brotli's and nginx's gzip header filters both require of the response before the client is asked. */
function candidate(status: number, headers: readonly string[], on: boolean, minLength: number, types: MimeTypes): boolean {
  if (!on || !COMPRESSIBLE_STATUSES.has(status)) return false;
  const ce = lastValue(headers, 'content-encoding');
  if (ce !== undefined && ce !== '') return false;
  const length = contentLength(headers);
  if (length !== -1 && length < minLength) return false;
  return typeMatches(types, lastValue(headers, 'content-type'));
}

/**
 * The compression header filter for one response. `headers` is the flat list about to be sent
 * (upstream headers after add_header, or a local answer's); it is rewritten in place: for a
 * compressed response Content-Encoding is added, Content-Length and Accept-Ranges go (HTTP/1.1
 * then sends it chunked, HTTP/1.0 closes the connection after it) and a strong ETag turns weak;
 * `Vary: Accept-Encoding` is added under gzip_vary whenever a filter considered the response,
 * whether or not this client gets it compressed. Brotli is tried first and wins when the client
 * accepts both (ngx_brotli's order). Returns the body's encoder, or null to send it as it is. A
 * HEAD response gets the same head and no body: the caller then does not use the encoder.
 */
export function compressionFilter(ctx: RequestContext, settings: Settings | null, status: number, headers: string[]): ResponseEncoder | null {
  // ngx_http_gzip_ok: a subrequest's body is part of its parent's, compressed with it or not at all.
  if (settings === null || ctx.parent !== null) return null;
  const cs = settings.compression;
  let coding: ContentCoding | null = null;
  if (candidate(status, headers, cs.brotli, cs.brotliMinLength, cs.brotliTypes)) {
    ctx.gzipVary = true;
    if (brotliOk(ctx)) {
      coding = 'br';
      // ngx_brotli marks gzip as tested and refused, so the gzip filter steps aside.
      ctx.gzipOk = false;
    }
  }
  if (coding === null && candidate(status, headers, cs.gzip, cs.gzipMinLength, cs.gzipTypes)) {
    ctx.gzipVary = true;
    // A request gzip_static (or brotli) already judged keeps that answer (nginx's r->gzip_tested).
    if (ctx.gzipOk ?? gzipOk(ctx, cs, headers)) coding = 'gzip';
  }
  let encoder: ResponseEncoder | null = null;
  if (coding !== null) {
    encoder = new ResponseEncoder(ctx, cs, coding, contentLength(headers));
    removeAll(headers, 'content-encoding');
    removeAll(headers, 'content-length');
    removeAll(headers, 'accept-ranges');
    weakenEtag(headers);
    headers.push('Content-Encoding', coding);
  }
  if (ctx.gzipVary && cs.gzipVary) addVary(headers);
  return encoder;
}

/**
 * Compresses one response body. {@link attach} streams it: each upstream read is compressed and
 * flushed (Z_SYNC_FLUSH, or Brotli's flush) once the reads of one turn of the event loop are in,
 * so a streamed response (server-sent events, long polling) reaches the client as it comes, as
 * with nginx's `proxy_buffering off`. {@link encodeAll} does a body already in memory.
 */
export class ResponseEncoder {
  readonly coding: ContentCoding;
  readonly #ctx: RequestContext;
  readonly #cs: CompressionSettings;
  /** The uncompressed length when known (-1 if not): smaller zlib windows for small bodies, as nginx. */
  readonly #length: number;

  constructor(ctx: RequestContext, cs: CompressionSettings, coding: ContentCoding, length: number) {
    this.#ctx = ctx;
    this.#cs = cs;
    this.coding = coding;
    this.#length = length;
  }

  /**
   * nginx's ngx_http_gzip_filter_memory: with a known length, the window and hash shrink step by
   * step while the body fits in half the window (less zlib's 262-byte lookahead).
   */
  #gzipOptions(): ZlibOptions {
    let windowBits = GZIP_WBITS;
    let memLevel = GZIP_MEMLEVEL;
    if (this.#length > 0) {
      while (this.#length < (1 << (windowBits - 1)) - 262) {
        windowBits--;
        memLevel--;
      }
    }
    return { level: this.#cs.gzipCompLevel, windowBits, memLevel, chunkSize: Math.max(MIN_CHUNK, this.#cs.gzipBuffers.size) };
  }

  /** ngx_brotli's window: the smallest that holds a body of known length, up to its default. */
  #brotliOptions(): BrotliOptions {
    let lgwin = BROTLI_LGWIN;
    if (this.#length > 0) {
      lgwin = BROTLI_MIN_LGWIN;
      while (lgwin < BROTLI_LGWIN && this.#length > 1 << lgwin) lgwin++;
    }
    const params: Record<number, number> = { [z.BROTLI_PARAM_QUALITY]: this.#cs.brotliCompLevel, [z.BROTLI_PARAM_LGWIN]: lgwin };
    if (this.#length > 0) params[z.BROTLI_PARAM_SIZE_HINT] = this.#length;
    return { params, chunkSize: Math.max(MIN_CHUNK, this.#cs.gzipBuffers.size) };
  }

  #count(): CompressedBody {
    const counts: CompressedBody = { encoding: this.coding, bytesIn: 0, bytesOut: 0, done: false };
    this.#ctx.compressed = counts;
    return counts;
  }

  /**
   * The compressed stream of `body`, with backpressure both ways: `body` pauses while the
   * compressor holds a full input buffer, and the compressor stops taking input while
   * gzip_buffers' NUMBER x SIZE of output wait for the client. The caller reads the result like
   * the body itself (it ends when `body` ends) and destroys it if the client goes away.
   */
  attach(body: Readable): Transform {
    // Node's zlib streams pass stream options on to Transform; @types/node does not list them.
    const hold: Pick<TransformOptions, 'readableHighWaterMark'> = { readableHighWaterMark: this.#cs.gzipBuffers.number * this.#cs.gzipBuffers.size };
    const zs: Transform = this.coding === 'br'
      ? createBrotliCompress({ ...this.#brotliOptions(), ...hold })
      : createGzip({ ...this.#gzipOptions(), ...hold });
    const flushKind = this.coding === 'br' ? z.BROTLI_OPERATION_FLUSH : z.Z_SYNC_FLUSH;
    const counts = this.#count();
    let flushPending = false;
    const flush = (): void => {
      flushPending = false;
      if (!zs.writableEnded && !zs.destroyed) (zs as Transform & { flush(kind: number): void }).flush(flushKind);
    };
    body.on('data', (chunk: Buffer) => {
      counts.bytesIn += chunk.length;
      if (zs.destroyed) return;
      if (!zs.write(chunk)) body.pause();
      if (!flushPending) {
        flushPending = true;
        setImmediate(flush);
      }
    });
    zs.on('drain', () => body.resume());
    body.once('end', () => {
      if (!zs.destroyed) zs.end();
    });
    // The compressed bytes are counted as zlib pushes them: a 'data' listener here would set the
    // stream flowing before its reader is attached (a static file's reader comes a turn later),
    // and what zlib produced meanwhile (the gzip header first) would be dropped.
    const push = zs.push;
    zs.push = function countedPush(this: Transform, chunk: unknown, encoding?: BufferEncoding): boolean {
      if (chunk !== null && chunk !== undefined) counts.bytesOut += (chunk as Buffer).length;
      return push.call(this, chunk, encoding);
    };
    zs.once('end', () => void (counts.done = true));
    return zs;
  }

  /** A whole body held in memory (a local answer): compressed in one go. */
  encodeAll(body: Buffer): Buffer {
    const counts = this.#count();
    const out = this.coding === 'br' ? brotliCompressSync(body, this.#brotliOptions()) : gzipSync(body, this.#gzipOptions());
    counts.bytesIn = body.length;
    counts.bytesOut = out.length;
    counts.done = true;
    return out;
  }
}

/**
 * `$gzip_ratio` / `$brotli_ratio`: uncompressed over compressed size with two decimals, rounded
 * on the third as nginx does (2.125 -> 2.13); not found unless this coding finished the body.
 */
export function compressionRatio(ctx: RequestContext, coding: ContentCoding): string | undefined {
  const c = ctx.compressed;
  if (c === null || c.encoding !== coding || !c.done || c.bytesOut === 0) return undefined;
  let whole = Math.floor(c.bytesIn / c.bytesOut);
  let frac = Math.floor((c.bytesIn * 100) / c.bytesOut) % 100;
  if (Math.floor((c.bytesIn * 1000) / c.bytesOut) % 10 > 4) {
    frac++;
    if (frac > 99) {
      whole++;
      frac = 0;
    }
  }
  return `${whole}.${String(frac).padStart(2, '0')}`;
}

/**
 * The filter for a local answer (an error page, `return`): `headers` (with its Content-Length)
 * rewritten as for any response, and the body to send, compressed whole when the client gets it
 * so. A HEAD answer keeps its body here; the caller sends none.
 */
export function encodeLocalBody(ctx: RequestContext, status: number, headers: string[], body: Buffer): Buffer {
  const encoder = compressionFilter(ctx, ctx.settings, status, headers);
  return encoder === null || ctx.method === 'HEAD' ? body : encoder.encodeAll(body);
}
