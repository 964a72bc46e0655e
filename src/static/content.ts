/**
 * The content phase for a location that neither proxies nor serves a status, in nginx's order of
 * handlers: index (a URI ending in "/": the first index file that exists, by internal redirect),
 * autoindex (a listing), static (the file), and else nginx's 403 "directory index ... is
 * forbidden". Each answer is what nginx sends: statuses, headers, error-log lines and levels.
 */
import { Readable } from 'node:stream';
import type { Settings } from '../config/types.js';
import { errnoCode, errnoSuffix } from '../core/errno.js';
import { escapeUri, utf8Bytes } from '../core/escape.js';
import type { LogLevel } from '../config/types.js';
import type { ErrorLog } from '../observability/error-log.js';
import { absoluteLocation } from '../proxy/answer/location-header.js';
import type { LocalResponse } from '../proxy/answer/respond.js';
import { errorPage } from '../proxy/answer/error-page.js';
import { httpDate } from '../proxy/answer/http-date.js';
import type { StreamedResponse } from '../proxy/answer/streamed.js';
import { logContext } from '../proxy/context/log-context.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import type { Variables } from '../proxy/context/variables.js';
import { applyHeadersFilter, withCharset } from '../proxy/headers/response-headers.js';
import { sendableHeaderValue } from '../proxy/headers/header-value.js';
import { htmlListing, jsonListing, jsonpCallback, readEntries, xmlListing } from './autoindex.js';
import { conditionalStatus, first } from './conditional.js';
import { READ_CHUNK, fileBody, readAll, type BodyPart } from './file-body.js';
import type { Evaluate } from './map-path.js';
import { mapUriToPath } from './map-path.js';
import { contentType } from './mime.js';
import { closeFile, openFile, symlinkPolicy, testFile, type FileFailure } from './open-file.js';
import { ifRangeHolds, multipartBody, parseRanges } from './ranges.js';
import { compressionFilter } from '../proxy/filters/compression.js';
import { findPrecompressed, type Precompressed } from '../proxy/filters/precompressed.js';
import { chainFilters, ssiFilter, ssiHeaderFilter, type BodyFilter, type Subrequest } from '../proxy/filters/ssi/filter.js';

/** What serving files decided. */
export type FilesOutcome =
  /** A 200, 206 or 304 (a file, a listing). */
  | { readonly kind: 'stream'; readonly response: StreamedResponse }
  /** A page of nginx's with headers of its own (301 with Location, 416 with Content-Range). */
  | { readonly kind: 'local'; readonly response: LocalResponse }
  /** nginx's error page for the status. */
  | { readonly kind: 'status'; readonly status: number }
  /** An internal redirect (`index`, `try_files`): the request goes through the server again. */
  | { readonly kind: 'redirect'; readonly uri: string; readonly args: string | null }
  /** `try_files ... @name`. */
  | { readonly kind: 'named'; readonly name: string };

/** One request's view of the files it may be served. */
export interface FilesRequest {
  readonly ctx: RequestContext;
  readonly settings: Settings;
  readonly vars: Variables;
  readonly log: ErrorLog;
  /** Subrequests for SSI's `include` (none outside a proxy session). */
  readonly subrequest?: Subrequest;
}

export function evaluator(vars: Variables): Evaluate {
  return (v, ctx) => vars.evaluate(v, ctx);
}

function status(code: number): FilesOutcome {
  return { kind: 'status', status: code };
}

export function logLine(rq: FilesRequest, level: LogLevel, message: string): void {
  rq.log.log(level, `${message}${logContext(rq.ctx)}`, rq.ctx.conn.id);
}

/** GET, HEAD and POST: the methods nginx's static modules take (anything else: 405). */
function readMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'POST';
}

/** The content phase for `ctx.uri`. */
export async function serveFiles(rq: FilesRequest): Promise<FilesOutcome> {
  const { ctx, settings } = rq;
  if (!ctx.uri.endsWith('/')) return staticFile(rq);
  const method = ctx.method;
  if (readMethod(method)) {
    const found = await indexFiles(rq);
    if (found !== null) return found;
  }
  if (settings.files.autoindex && (method === 'GET' || method === 'HEAD')) return autoindex(rq);
  if (!readMethod(method)) return status(405);
  logLine(rq, 'error', `directory index of "${mapUriToPath(settings.files, ctx.uri, ctx, evaluator(rq.vars)).path}" is forbidden`);
  return status(403);
}

/** nginx's answer to a file that cannot be opened: 404 (logged unless log_not_found off), 403, or 500. */
function openFailed(rq: FilesRequest, path: string, f: FileFailure): FilesOutcome {
  const code = errnoCode(f.err);
  const line = `${f.failed} "${path}" failed ${errnoSuffix(f.err)}`;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') {
    if (rq.settings.files.logNotFound) logLine(rq, 'error', line);
    return status(404);
  }
  if (code === 'EACCES' || code === 'EMLINK' || code === 'ELOOP') {
    logLine(rq, 'error', line);
    return status(403);
  }
  logLine(rq, 'crit', line);
  return status(500);
}

/** ngx_http_index_handler; null when no index file exists (the next handler goes on). */
async function indexFiles(rq: FilesRequest): Promise<FilesOutcome | null> {
  const { ctx, settings } = rq;
  const files = settings.files;
  const evaluate = evaluator(rq.vars);
  const args = ctx.hasArgs ? ctx.args : null;
  let dirTested = false;
  for (const index of files.index) {
    const name = evaluate(index, ctx);
    if (name.startsWith('/')) return { kind: 'redirect', uri: name, args };
    const dir = mapUriToPath(files, ctx.uri, ctx, evaluate).path;
    const path = dir + name;
    const test = await testFile(path, symlinkPolicy(files, path, ctx, evaluate));
    if (test.ok) return { kind: 'redirect', uri: ctx.uri + name, args };
    const code = errnoCode(test.err);
    if (code === 'ELOOP' || code === 'EMLINK') return status(403);
    if (code === 'ENOTDIR' || code === 'ENAMETOOLONG' || code === 'EACCES') return indexError(rq, path, test.err);
    if (!dirTested) {
      const bad = await testIndexDir(rq, dir, path);
      if (bad !== null) return bad;
      dirTested = true;
    }
    if (code === 'ENOENT') continue;
    logLine(rq, 'crit', `${test.failed} "${path}" failed ${errnoSuffix(test.err)}`);
    return status(500);
  }
  return null;
}

/** ngx_http_index_error. */
function indexError(rq: FilesRequest, path: string, err: unknown): FilesOutcome {
  if (errnoCode(err) === 'EACCES') {
    logLine(rq, 'error', `"${path}" is forbidden ${errnoSuffix(err)}`);
    return status(403);
  }
  if (rq.settings.files.logNotFound) logLine(rq, 'error', `"${path}" is not found ${errnoSuffix(err)}`);
  return status(404);
}

/**
 * ngx_http_index_test_dir: after an index file was not found, whether its directory exists (a
 * missing one is 404, logged with the index file's name as nginx does).
 */
async function testIndexDir(rq: FilesRequest, mapped: string, indexPath: string): Promise<FilesOutcome | null> {
  const { ctx, settings } = rq;
  const dir = mapped.length > 1 && mapped.endsWith('/') ? mapped.slice(0, -1) : mapped;
  const test = await testFile(dir, symlinkPolicy(settings.files, dir, ctx, evaluator(rq.vars)));
  if (!test.ok) {
    const code = errnoCode(test.err);
    if (code === 'ELOOP' || code === 'EMLINK') return status(403);
    if (code === 'ENOENT') return indexError(rq, indexPath, test.err);
    // Search permission on the directory was there: the index file's own test said more than EACCES.
    if (code === 'EACCES') return null;
    logLine(rq, 'crit', `${test.failed} "${dir}" failed ${errnoSuffix(test.err)}`);
    return status(500);
  }
  if (test.stat.isDirectory()) return null;
  logLine(rq, 'alert', `"${dir}" is not a directory`);
  return status(500);
}

/** ngx_http_autoindex_handler. */
async function autoindex(rq: FilesRequest): Promise<FilesOutcome> {
  const { ctx, settings } = rq;
  const files = settings.files;
  let callback: string | null = null;
  if (files.autoindexFormat === 'jsonp') {
    const cb = jsonpCallback(rq.vars.get('arg_callback', ctx));
    if ('refused' in cb) {
      logLine(rq, 'info', cb.refused);
      return status(400);
    }
    callback = cb.name;
  }
  const mapped = mapUriToPath(files, ctx.uri, ctx, evaluator(rq.vars)).path;
  const dir = mapped.length > 1 ? mapped.slice(0, -1) : mapped;
  let entries;
  try {
    entries = await readEntries(dir, (p) => logLine(rq, 'crit', `stat() "${p.path}" failed ${errnoSuffix(p.err)}`));
  } catch (err) {
    const code = errnoCode(err);
    const line = `opendir() "${dir}" failed ${errnoSuffix(err)}`;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') {
      logLine(rq, 'error', line);
      return status(404);
    }
    if (code === 'EACCES') {
      logLine(rq, 'error', line);
      return status(403);
    }
    logLine(rq, 'crit', line);
    return status(500);
  }
  if (entries === null) return status(500);
  let type: string;
  let text: string;
  switch (files.autoindexFormat) {
    case 'html':
      type = 'text/html';
      text = htmlListing(utf8Bytes(ctx.uri), entries, files, -new Date().getTimezoneOffset());
      break;
    case 'xml':
      type = 'text/xml; charset=utf-8';
      text = xmlListing(entries);
      break;
    default:
      type = callback === null ? 'application/json' : 'application/javascript';
      text = jsonListing(entries, callback);
  }
  const cond = conditionalStatus(ctx.headers, files, -1, null);
  if (cond === 412) return status(412);
  const headers = cond === 304 ? [] : ['Content-Type', withCharset(rq.settings, type)];
  const body = cond === 304 || ctx.method === 'HEAD' ? null : Buffer.from(text, 'latin1');
  return stream(rq, cond === 304 ? 304 : 200, headers, body === null ? null : () => Readable.from([body], { objectMode: false }));
}

/**
 * gzip_static / brotli_static, asked before FILE is opened (nginx's precompressed handlers run
 * first): FILE.gz or FILE.br looked at under the same symlink rules as FILE.
 */
function precompressed(rq: FilesRequest, path: string): Promise<Precompressed> {
  const { ctx, settings } = rq;
  const evaluate = evaluator(rq.vars);
  return findPrecompressed(ctx, settings, path, {
    stat: async (p) => {
      const t = await testFile(p, symlinkPolicy(settings.files, p, ctx, evaluate));
      if (t.ok) return t.stat;
      throw t.err;
    },
    log: (level, message) => logLine(rq, level, message),
  });
}

/** ngx_http_static_handler. */
async function staticFile(rq: FilesRequest): Promise<FilesOutcome> {
  const { ctx, settings } = rq;
  const files = settings.files;
  if (!readMethod(ctx.method)) return status(405);
  const evaluate = evaluator(rq.vars);
  const { path } = mapUriToPath(files, ctx.uri, ctx, evaluate);
  const pre = await precompressed(rq, path);
  if (pre.kind === 'not-found') return status(404);
  const served = pre.kind === 'file' ? pre.path : path;
  const opened = await openFile(served, symlinkPolicy(files, served, ctx, evaluate));
  if (!opened.ok) return openFailed(rq, served, opened);
  const { fd, stat } = opened;
  if (fd === null) return directoryRedirect(rq);
  let handed = false;
  try {
    if (!stat.isFile()) {
      logLine(rq, 'crit', `"${served}" is not a regular file`);
      return status(404);
    }
    if (ctx.method === 'POST') return status(405);
    const size = stat.size;
    const mtime = Math.floor(stat.mtimeMs / 1000);
    // nginx's ETag: hex of the modification time and of the size.
    const etag = files.etag ? `"${mtime.toString(16)}-${size.toString(16)}"` : null;
    const validators = ['Last-Modified', httpDate(mtime * 1000)];
    if (etag !== null) validators.push('ETag', etag);
    // An error page's file goes out with the error's status (nginx's err_status): the
    // not-modified, range and add_header filters see that status, not a 200.
    const sent = ctx.errStatus === 0 ? 200 : ctx.errStatus;
    const cond = sent === 200 ? conditionalStatus(ctx.headers, files, mtime, etag) : 200;
    if (cond === 412) return status(412);
    if (cond === 304) {
      // gzip_static marked the request (r->gzip_vary), so nginx's header filter adds Vary to the 304 too.
      compressionFilter(ctx, settings, 304, validators);
      return stream(rq, 304, validators, null);
    }
    // ngx_http_charset_header_filter names `charset` in the type of charset_types.
    const type = withCharset(settings, contentType(settings, ctx.uri));
    const head = ctx.method === 'HEAD';
    // nginx's gzip filter runs after add_header and before the range filter, on the 200 about to
    // go out: when it compresses, it turns ranges off and the client gets the whole body.
    const whole = ['Content-Type', type, 'Content-Length', String(size), ...validators];
    if (pre.kind === 'file') whole.push('Content-Encoding', pre.coding);
    else if (files.maxRanges !== 0 && sent === 200) whole.push('Accept-Ranges', 'bytes');
    applyHeadersFilter(settings, sent, ctx, rq.vars, whole);
    // nginx's SSI filter runs before gzip; it takes the length and ranges away (filter.ts).
    const ssi = pre.kind !== 'file' && rq.subrequest !== undefined && ssiHeaderFilter(ctx, settings, whole)
      ? ssiFilter(ctx, settings, { vars: rq.vars, log: rq.log, subrequest: rq.subrequest })
      : null;
    const encoder = chainFilters(ssi, compressionFilter(ctx, settings, sent, whole));
    // gzip_static does not allow ranges either.
    const range = sent !== 200 || encoder !== null || pre.kind === 'file' || !ifRangeHolds(first(ctx.headers['if-range']), etag, mtime)
      ? { kind: 'whole' as const }
      : parseRanges(first(ctx.headers.range), size, files);
    if (range.kind === 'unsatisfiable') {
      // nginx's range filter runs after add_header has seen the 200, and the 416 page goes
      // through add_header again: the 200's headers stay, and `always` ones come twice.
      const headers = ['Content-Type', 'text/html'];
      applyHeadersFilter(settings, 200, ctx, rq.vars, headers);
      headers.push('Content-Range', `bytes */${size}`);
      applyHeadersFilter(settings, 416, ctx, rq.vars, headers);
      return { kind: 'local', response: { status: 416, headers, body: errorPage(416), drop: false } };
    }
    let parts: BodyPart[];
    let headers: string[];
    let code = 200;
    if (range.kind === 'whole') {
      headers = whole;
      parts = size === 0 ? [] : [{ start: 0, end: size }];
    } else if (range.ranges.length === 1) {
      const r = range.ranges[0]!;
      code = 206;
      headers = ['Content-Type', type, 'Content-Length', String(r.end - r.start), ...validators, 'Content-Range', `bytes ${r.start}-${r.end - 1}/${size}`];
      parts = [r];
    } else {
      code = 206;
      const m = multipartBody(range.ranges, type, size);
      parts = m.parts;
      headers = ['Content-Type', `multipart/byteranges; boundary=${m.boundary}`, 'Content-Length', String(m.length), ...validators];
    }
    if (code === 206) {
      applyHeadersFilter(settings, code, ctx, rq.vars, headers);
      // Not compressed, but gzip_vary still says the 206 depends on Accept-Encoding.
      compressionFilter(ctx, settings, code, headers);
    }
    const done = (body: (() => Readable) | null): FilesOutcome => ({ kind: 'stream', response: { status: code, headers, body: body === null ? null : body() } });
    // An empty file still gets an (empty) gzip stream when it is compressed, as from nginx.
    if (head || (parts.length === 0 && encoder === null)) return done(null);
    const total = parts.reduce((n, p) => n + (typeof p === 'string' ? p.length : p.end - p.start), 0);
    let body: () => Readable;
    if (total <= READ_CHUNK) {
      let buf: Buffer;
      try {
        buf = await readAll(fd, served, parts, total);
      } catch (err) {
        // The file changed size since fstat: nginx logs it at alert and fails the request.
        logLine(rq, 'alert', (err as Error).message);
        return status(500);
      }
      body = () => Readable.from([buf], { objectMode: false });
    } else {
      body = () => fileBody(fd, served, parts);
      handed = true;
    }
    return done(encoder === null ? body : () => filtered(encoder, body()));
  } finally {
    if (!handed) await closeFile(fd);
  }
}

/**
 * A file body through the compression filter. Whoever gets the result destroys it when the client
 * leaves, which closes the file; a read failure (the file shrank) fails the compressed stream.
 */
function filtered(encoder: BodyFilter, file: Readable): Readable {
  const zs = encoder.attach(file);
  zs.once('close', () => {
    if (!file.readableEnded) file.destroy();
  });
  file.once('error', (err: Error) => zs.destroy(err));
  return zs;
}

/**
 * A directory named without its trailing slash: 301 to the URI with one (escaped, with the
 * arguments), made absolute as every redirect (absolute_redirect).
 */
function directoryRedirect(rq: FilesRequest): FilesOutcome {
  const { ctx, settings } = rq;
  let location = `${escapeUri(utf8Bytes(ctx.uri), 'uri')}/`;
  if (ctx.args !== '') location += `?${ctx.args}`;
  const headers = ['Content-Type', 'text/html', 'Location', sendableHeaderValue('Location', absoluteLocation(location, settings, ctx))];
  applyHeadersFilter(settings, 301, ctx, rq.vars, headers);
  return { kind: 'local', response: { status: 301, headers, body: errorPage(301), drop: false } };
}

/** A 200/206/304 with add_header applied for its status; the body is made last (it holds the file open). */
function stream(rq: FilesRequest, code: number, headers: string[], body: (() => Readable) | null): FilesOutcome {
  applyHeadersFilter(rq.settings, code, rq.ctx, rq.vars, headers);
  return { kind: 'stream', response: { status: code, headers, body: body === null ? null : body() } };
}
