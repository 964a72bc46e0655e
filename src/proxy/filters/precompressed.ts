/**
 * `gzip_static` and `brotli_static`: serving FILE.gz or FILE.br, made ahead of time, in place of a
 * static FILE (nginx's ngx_http_gzip_static_module and ngx_brotli's static module). The static
 * content handler asks {@link findPrecompressed} before it opens FILE, and serves what it answers;
 * it then passes its response head through the compression filter as every response does
 * (compression.ts), which adds `Vary: Accept-Encoding` where gzip_static asked for it and leaves a
 * precompressed body alone (it has a Content-Encoding).
 */
import type { Stats } from 'node:fs';
import { stat as fsStat } from 'node:fs/promises';
import type { LogLevel, PrecompressedMode, Settings } from '../../config/types.js';
import type { RequestContext } from '../context/request-context.js';
import type { ContentCoding } from './compression.js';
import { brotliOk, gzipOk } from './negotiation.js';

/**
 * A precompressed file to serve: status 200, `Content-Encoding: coding`, FILE's Content-Type, and
 * Content-Length, Last-Modified and ETag of this file; no Accept-Ranges, and a Range header is
 * not honoured (nginx's gzip_static does not allow ranges).
 */
export interface PrecompressedFile {
  readonly kind: 'file';
  /** FILE.br or FILE.gz. */
  readonly path: string;
  readonly coding: ContentCoding;
  /** Of the precompressed file: its size is the Content-Length, its mtime the Last-Modified and ETag. */
  readonly stats: Stats;
}

/**
 * What to serve for FILE: a precompressed file; `none` (serve FILE itself, which the gzip or
 * Brotli filter may still compress); or `not-found` (FILE.gz exists but is not a regular file:
 * nginx answers 404 and logs it at crit).
 */
export type Precompressed = PrecompressedFile | { readonly kind: 'none' } | { readonly kind: 'not-found' };

export interface PrecompressedOptions {
  /**
   * How to look at a file: fs.promises.stat by default; the static handler passes its own when
   * `disable_symlinks` or open_file_cache apply to FILE.gz as to FILE (nginx opens both alike).
   */
  readonly stat?: (path: string) => Promise<Stats>;
  /** Where nginx's error-log lines go (a denied FILE.gz at error, a FILE.gz that is no file at crit). */
  readonly log?: (level: LogLevel, message: string) => void;
}

/** nginx declines quietly on these (ngx_http_gzip_static_handler), and logs any other failure. */
const QUIETLY: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG']);
const AT_ERROR: ReadonlySet<string> = new Set(['EACCES', 'ELOOP', 'EMLINK']);

/** nginx's "(13: Permission denied)" from Node's "EACCES: permission denied, stat '...'". */
function systemError(e: NodeJS.ErrnoException): string {
  const text = /^[A-Z0-9]+: ([^,]+)/.exec(e.message)?.[1] ?? e.message;
  return `${e.errno === undefined ? '' : `${Math.abs(e.errno)}: `}${text.charAt(0).toUpperCase()}${text.slice(1)}`;
}

const NONE: Precompressed = Object.freeze({ kind: 'none' });

type Step = Precompressed | 'declined';

/**
 * One of nginx's two static handlers (brotli_static runs before gzip_static, a module loaded after
 * gzip's running first). `accepts` is asked only for `on`; `always` serves the file to everyone.
 */
async function tryCoding(
  ctx: RequestContext, settings: Settings, file: string, mode: PrecompressedMode, coding: ContentCoding,
  accepts: () => boolean, options: PrecompressedOptions,
): Promise<Step> {
  if (mode === 'off') return 'declined';
  const ok = mode === 'always' || accepts();
  // Without gzip_vary there is nothing to learn from FILE.gz for a client that cannot have it.
  if (!ok && !settings.compression.gzipVary) return 'declined';
  const path = `${file}.${coding === 'br' ? 'br' : 'gz'}`;
  let stats: Stats;
  try {
    stats = await (options.stat ?? fsStat)(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!QUIETLY.has(e.code ?? '')) options.log?.(AT_ERROR.has(e.code ?? '') ? 'error' : 'crit', `stat() "${path}" failed (${systemError(e)})`);
    return 'declined';
  }
  // `on`: the response depends on Accept-Encoding once a precompressed file exists.
  if (mode === 'on') ctx.gzipVary = true;
  if (!ok || stats.isDirectory()) return 'declined';
  if (!stats.isFile()) {
    options.log?.('crit', `"${path}" is not a regular file`);
    return { kind: 'not-found' };
  }
  return { kind: 'file', path, coding, stats };
}

/**
 * gzip_static / brotli_static for a GET or HEAD of `file` (the path the static handler mapped the
 * URI to): FILE.br for a client that accepts Brotli (brotli_static), else FILE.gz for one that
 * passes ngx_http_gzip_ok (gzip_static), each with `always` for every client. A URI ending in `/`
 * is never served this way (the index handler maps it to a file first).
 */
export async function findPrecompressed(ctx: RequestContext, settings: Settings, file: string, options: PrecompressedOptions = {}): Promise<Precompressed> {
  if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || ctx.uri.endsWith('/')) return NONE;
  const cs = settings.compression;
  const br = await tryCoding(ctx, settings, file, cs.brotliStatic, 'br', () => {
    if (!brotliOk(ctx)) return false;
    // ngx_brotli marks gzip as tested and refused for a client that accepts br.
    ctx.gzipOk = false;
    return true;
  }, options);
  if (br !== 'declined') return br;
  // gzip_static asks ngx_http_gzip_ok afresh, before any response header exists.
  const gz = await tryCoding(ctx, settings, file, cs.gzipStatic, 'gzip', () => gzipOk(ctx, cs, []), options);
  return gz === 'declined' ? NONE : gz;
}
