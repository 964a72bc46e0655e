/**
 * nginx's ngx_http_map_uri_to_path: the file name for a URI under `root` or `alias`, built as
 * text, exactly as nginx builds it. Nothing is normalised: an `alias` without a trailing slash in
 * a location with one (`location /img/ { alias /data/img; }`) maps "/img/x" to "/data/imgx", and
 * "/img../x" under `location /img { alias /data/img/; }` to "/data/img/../x", a directory up,
 * as in nginx ("off-by-slash"; docs/configuration.md, alias).
 */
import type { ComplexValue, FileSettings } from '../config/types.js';
import type { RequestContext } from '../proxy/context/request-context.js';

export type Evaluate = (value: ComplexValue, ctx: RequestContext) => string;

/** The file name of `uri`, and how much of it is the root (`$document_root`). */
export interface MappedPath {
  readonly path: string;
  readonly rootLength: number;
}

/**
 * `$document_root`: the root or alias as evaluated for the request; a relative value (from a
 * variable) is made absolute against the prefix (nginx's ngx_get_full_name).
 */
export function documentRoot(files: FileSettings, ctx: RequestContext, evaluate: Evaluate): string {
  const root = files.root;
  if (root.path.constant !== null) return root.path.constant;
  const value = evaluate(root.path, ctx);
  if (value.startsWith('/')) return value;
  return `${root.prefix.endsWith('/') ? root.prefix : `${root.prefix}/`}${value}`;
}

/** ngx_http_map_uri_to_path for `uri` (the request's `$uri` unless a module tests another name). */
export function mapUriToPath(files: FileSettings, uri: string, ctx: RequestContext, evaluate: Evaluate): MappedPath {
  const root = documentRoot(files, ctx, evaluate);
  const alias = files.root.alias;
  if (alias === 'regex') {
    // An alias in a regex location is the whole file name, unless try_files found a file for it.
    return { path: ctx.addUriToAlias ? root + uri : root, rootLength: root.length };
  }
  return { path: root + uri.slice(alias ?? 0), rootLength: root.length };
}
