/**
 * ngx_http_try_files_module: before the content phase, each name is tested under the root (or
 * alias) in order; the first that exists as a file (or, written with a trailing slash, as a
 * directory) becomes `$uri` and the location's own content handler serves it (no new location
 * search). If none exists, the last parameter decides: `=CODE`, an internal redirect to a URI
 * (arguments split at "?"), or a named location. nginx's quirks under `alias` are kept: a value
 * with variables loses the location prefix before it is tested, and in a regex location the name
 * is appended to the alias.
 */
import type { TryFilesConfig } from '../config/types.js';
import { errnoCode, errnoSuffix } from '../core/errno.js';
import { evaluator, logLine, type FilesOutcome, type FilesRequest } from './content.js';
import { documentRoot } from './map-path.js';
import { symlinkPolicy, testFile } from './open-file.js';

/** The request may go on to the content handler (with `$uri` possibly changed), or this outcome ends it. */
export type TryFilesOutcome = { readonly kind: 'continue' } | FilesOutcome;

const CONTINUE: TryFilesOutcome = Object.freeze({ kind: 'continue' });

export async function tryFiles(rq: FilesRequest, tf: TryFilesConfig): Promise<TryFilesOutcome> {
  const { ctx, settings } = rq;
  const files = settings.files;
  const evaluate = evaluator(rq.vars);
  const alias = files.root.alias;
  const root = documentRoot(files, ctx, evaluate);
  /** A name as nginx tests it: evaluated, and under a prefix alias without the location prefix. */
  const nameOf = (value: typeof tf.tries[number]['value']): string => {
    const name = evaluate(value, ctx);
    if (typeof alias === 'number' && value.constant === null && name.startsWith(ctx.uri.slice(0, alias))) return name.slice(alias);
    return name;
  };
  for (const t of tf.tries) {
    const name = nameOf(t.value);
    const path = root + name;
    const test = await testFile(path, symlinkPolicy(files, path, ctx, evaluate));
    if (!test.ok) {
      const code = errnoCode(test.err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ENAMETOOLONG') logLine(rq, 'crit', `${test.failed} "${path}" failed ${errnoSuffix(test.err)}`);
      continue;
    }
    if (test.stat.isDirectory() !== t.dir) continue;
    if (alias === null) {
      ctx.uri = name;
    } else if (alias === 'regex') {
      if (!t.dir) {
        ctx.uri = name;
        ctx.addUriToAlias = true;
      }
    } else {
      ctx.uri = ctx.uri.slice(0, alias) + name;
    }
    return CONTINUE;
  }
  const fallback = tf.fallback;
  if ('code' in fallback) return { kind: 'status', status: fallback.code };
  const target = nameOf(fallback.uri);
  if (target.startsWith('@')) return { kind: 'named', name: target };
  const q = target.indexOf('?');
  return q === -1 ? { kind: 'redirect', uri: target, args: null } : { kind: 'redirect', uri: target.slice(0, q), args: target.slice(q + 1) };
}
