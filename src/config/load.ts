/**
 * The control plane's public API: config text or file in, a validated, deep-frozen Config out,
 * or every problem found (with file:line and, where useful, a hint).
 */
import { dirname, resolve } from 'node:path';
import { BuildContext } from './build-context.js';
import { buildDrafts } from './build.js';
import { deepFreeze } from './freeze.js';
import { resolveHosts, systemResolveHost } from './hosts.js';
import { INLINE_FILE, readConfigTree, type Source } from './include.js';
import { Problems } from './problems.js';
import { assembleConfig, hostsToResolve } from './resolve.js';
import type { Config, ConfigProblem, SockAddr } from './types.js';
import { checkEvents, checkVariables } from './validate.js';

export { formatProblem, problemText } from './problems.js';
export { defaultServerByListen } from './default-server.js';

export interface LoadOptions {
  /** Path of the main config file (absolute, or relative to the current directory). */
  file?: string;
  /**
   * Inline config text. Shown as "<inline>" in messages unless `file` is also given, in which
   * case the text is used as that file's content.
   */
  text?: string;
  /** `-p`: where relative paths (include, logs, pid) start. @default the config file's directory, or process.cwd() for inline text */
  prefix?: string;
  /** `-g`: directives for the main context, e.g. "worker_processes 2; pid x.pid;" (shown as "<command line>"). */
  globalDirectives?: string;
  /** Host name resolution. @default dns.lookup(host, { all: true }); IP literals never reach it */
  resolveHost?: (host: string) => Promise<SockAddr[]>;
  /**
   * Files the `ssl_*` directives name, already read (a primary's `Config.files`): used instead of
   * the disk, so a worker that runs as `user` needs no right to read keys.
   */
  preread?: ReadonlyMap<string, Buffer>;
}

export type LoadResult =
  | { ok: true; config: Config }
  /** `problems`: every error, with any warnings (`level: 'warn'`) among them, in reading order. */
  | { ok: false; problems: ConfigProblem[]; sources: { file: string; text: string }[] };

/**
 * Reads, checks and resolves a configuration. Never throws for problems in the configuration:
 * they are all returned, in the order found.
 */
export async function loadConfig(opts: LoadOptions): Promise<LoadResult> {
  if (opts.file === undefined && opts.text === undefined) {
    throw new TypeError('loadConfig needs a file or text');
  }
  const file = opts.file === undefined ? INLINE_FILE : resolve(opts.file);
  const prefix = resolve(opts.prefix ?? (opts.file === undefined ? process.cwd() : dirname(file)));
  const problems = new Problems();
  const fail = (sources: readonly Source[]): LoadResult => ({
    ok: false,
    problems: inReadingOrder([...problems.warnings, ...problems.list], sources),
    sources: sources.map((s) => ({ file: s.file, text: s.text })),
  });

  const tree = await readConfigTree({
    file, text: opts.text ?? null, prefix, globalDirectives: opts.globalDirectives ?? null,
  }, problems);
  // Syntax errors and unreadable files leave the tree incomplete; checking it would only add noise.
  if (problems.count > 0) return fail(tree.sources);

  const cx = new BuildContext(problems, prefix, opts.preread ?? null);
  const main = buildDrafts(tree.directives, cx);
  checkEvents(main, file, cx);
  checkVariables(cx);
  const hosts = await resolveHosts(hostsToResolve(main), opts.resolveHost ?? systemResolveHost);
  const config = assembleConfig(main, hosts, cx, { file, prefix, sources: tree.sources });
  if (problems.count > 0) return fail(tree.sources);
  return { ok: true, config: deepFreeze({ ...config, warnings: inReadingOrder(problems.warnings, tree.sources) }) };
}

/**
 * Problems sorted as a reader meets them: `-g` text first, then files in the order they were read,
 * by line; problems without a position (line 0) last. The sort is stable.
 */
function inReadingOrder(list: readonly ConfigProblem[], sources: readonly Source[]): ConfigProblem[] {
  const order = new Map(sources.map((s, i) => [s.file, i]));
  const rank = (p: ConfigProblem): number => (p.line === 0 ? Number.MAX_SAFE_INTEGER : order.get(p.file) ?? -1);
  return [...list].sort((a, b) => rank(a) - rank(b) || a.line - b.line);
}

/** The `-T` dump, as nginx prints it: each file under "# configuration file FILE:". */
export function dumpConfig(sources: readonly { readonly file: string; readonly text: string }[]): string {
  return sources.map((s) => `# configuration file ${s.file}:\n${s.text}\n`).join('');
}
