/**
 * Reading the configuration: the main file, the `-g` directives and every `include`d file, with
 * includes expanded in place (nginx parses an included file in the context of the `include`).
 * Include paths are relative to the prefix; a pattern (`*`, `?`, `[...]`) that matches nothing is
 * fine, a plain path that does not exist is an error (except a missing "mime.types",
 * "fastcgi_params" or "fastcgi.conf": Sluice's own copy is read), and a file that includes itself (directly or through others) is an error
 * rather than nginx's endless recursion.
 */
import { access, readFile, realpath } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errnoSuffix } from '../core/errno.js';
import { expandGlob, hasGlobMagic } from './glob.js';
import { MAX_BLOCK_DEPTH, parseConfigText, tooManyBlocks, type Directive, type ParseOptions } from './parser.js';

export { MAX_BLOCK_DEPTH } from './parser.js';
import type { Problems } from './problems.js';

/**
 * Sluice's copy of nginx's conf/mime.types (conf/ in the package): what `include mime.types;`
 * reads when there is no such file where the include names it.
 */
export const BUNDLED_MIME_TYPES = fileURLToPath(new URL('../../../conf/mime.types', import.meta.url));

/**
 * The files nginx ships in its conf/ that configs include by bare name, and Sluice's copies of
 * them (conf/ in the package), read when the include finds no such file of its own.
 */
const BUNDLED: ReadonlyMap<string, string> = new Map([
  ['mime.types', BUNDLED_MIME_TYPES],
  ['fastcgi_params', fileURLToPath(new URL('../../../conf/fastcgi_params', import.meta.url))],
  ['fastcgi.conf', fileURLToPath(new URL('../../../conf/fastcgi.conf', import.meta.url))],
]);

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** A file that was read, with its text (for `-T` and for error context). */
export interface Source {
  readonly file: string;
  readonly text: string;
}

/** The name used for inline config text. */
export const INLINE_FILE = '<inline>';
/** The name used for `-g` text. */
export const COMMAND_LINE_FILE = '<command line>';

export interface ReadTreeOptions {
  /** Absolute path of the main file, or INLINE_FILE. */
  readonly file: string;
  /** The main file's text when already known (inline config), else it is read from `file`. */
  readonly text: string | null;
  readonly prefix: string;
  readonly globalDirectives: string | null;
}

export interface ConfigTree {
  /** Main-context directives: the `-g` ones first (nginx applies them before the file), then the file's. */
  readonly directives: readonly Directive[];
  readonly sources: readonly Source[];
}

/** nginx's `open() "PATH" failed (2: No such file or directory)`. */
export function openFailedMessage(path: string, err: unknown): string {
  return `open() "${path}" failed ${errnoSuffix(err)}`;
}

/**
 * How many files the include tree may hold: every inclusion counts, so a file included from
 * three places counts three times. nginx has no limit (and no cycle check); this bounds the time
 * and memory a configuration can take to read, whatever its files say. @default 100000
 */
export const MAX_INCLUDED_FILES = 100_000;

/**
 * How deep includes may nest (a file included by a file included by ...). The main file is at
 * depth 0. Apache httpd stops at the same depth (AP_MAX_INCLUDE_DEPTH). @default 128
 */
export const MAX_INCLUDE_DEPTH = 128;

/** A file being read (on the depth-first path from the main file). */
interface ReadFrame {
  readonly path: string;
  /** The real path (symbolic links resolved), which identifies the file on the include path. */
  readonly real: string;
  /** The valid include lines of the file, in order, and the next file to look at. */
  readonly sites: readonly Directive[];
  site: number;
  target: number;
  /** The include line that led here (null for the main file and the -g text). */
  readonly via: Directive | null;
}

/** How an include chain is shown in a hint: `a.conf:3 -> b.conf:1 -> ...`, long chains shortened. */
function chainText(sites: readonly Directive[], end: string): string {
  const shown = sites.map((d) => `${d.file}:${d.line}`);
  if (shown.length > 6) shown.splice(3, shown.length - 6, `... (${shown.length - 6} more)`);
  return [...shown, end].join(' -> ');
}

/**
 * Reads every file the configuration includes, once each, and checks the include graph for
 * cycles before anything is expanded. Walking the graph (files and include lines) rather than
 * every path through it keeps the work linear: files that each include their own folder by a
 * mask form N! paths but only N^2 include edges.
 */
class TreeReader {
  readonly sources: Source[] = [];
  private readonly texts = new Map<string, string>();
  private readonly parsed = new Map<string, readonly Directive[]>();
  /** The files each valid `include` line names, in order. */
  private readonly targets = new Map<Directive, readonly string[]>();
  private readonly reals = new Map<string, string>();
  private readonly unreadable = new Map<string, unknown>();
  private readonly globs = new Map<string, readonly string[]>();
  private filesRead = 0;

  constructor(private readonly problems: Problems, private readonly prefix: string) {}

  /** Reads a file once (a file included twice is read, parsed and dumped once). */
  async read(path: string): Promise<string> {
    const cached = this.texts.get(path);
    if (cached !== undefined) return cached;
    // A UTF-8 byte order mark would otherwise become part of the first directive's name.
    const text = (await readFile(path, 'utf8')).replace(/^\uFEFF/, '');
    this.remember(path, text);
    return text;
  }

  remember(path: string, text: string): void {
    if (this.texts.has(path)) return;
    this.texts.set(path, text);
    this.sources.push({ file: path, text });
  }

  async realpath(path: string): Promise<string> {
    let real = this.reals.get(path);
    if (real === undefined) {
      real = await realpath(path).catch(() => path);
      this.reals.set(path, real);
    }
    return real;
  }

  /** Parses a file's text once and lists its include lines with the files each names. */
  async frame(path: string, real: string, text: string, via: Directive | null, options: ParseOptions = {}): Promise<ReadFrame> {
    let directives = this.parsed.get(path);
    if (directives === undefined) {
      directives = parseConfigText(text, path, this.problems, options);
      this.parsed.set(path, directives);
    }
    const sites: Directive[] = [];
    const pending: Directive[] = [...directives].reverse();
    for (let d = pending.pop(); d !== undefined; d = pending.pop()) {
      if (d.name === 'include') {
        if ((await this.includeTargets(d)).length > 0) sites.push(d);
      } else if (d.block !== null) {
        for (let i = d.block.length - 1; i >= 0; i--) pending.push(d.block[i]!);
      }
    }
    return { path, real, sites, site: 0, target: 0, via };
  }

  private async includeTargets(d: Directive): Promise<readonly string[]> {
    const at = { file: d.file, line: d.line };
    if (d.block !== null) {
      this.problems.add('directive "include" is not terminated by ";"', at);
      return [];
    }
    if (d.args.length !== 1) {
      this.problems.add('invalid number of arguments in "include" directive', at);
      return [];
    }
    const pattern = resolve(this.prefix, d.args[0]!);
    let files: readonly string[] = [pattern];
    const bundled = BUNDLED.get(basename(pattern));
    if (bundled !== undefined && !hasGlobMagic(d.args[0]!) && !(await exists(pattern))) {
      // The tables every nginx.conf includes ship with Sluice: a config moved from /etc/nginx
      // keeps working where that file is not (docs/configuration.md, types and fastcgi_pass).
      files = [bundled];
    } else if (hasGlobMagic(d.args[0]!)) {
      // Files that include their own folder repeat one mask many times: list the folder once.
      let globbed = this.globs.get(pattern);
      if (globbed === undefined) this.globs.set(pattern, globbed = await expandGlob(pattern));
      files = globbed;
    }
    this.targets.set(d, files);
    return files;
  }

  /** Counts a file read; false (reported at `site`) once there are too many. */
  private countRead(site: Directive): boolean {
    if (++this.filesRead <= MAX_INCLUDED_FILES) return true;
    this.tooManyFiles(site);
    return false;
  }

  parsedOf(path: string): readonly Directive[] {
    return this.parsed.get(path) ?? [];
  }

  private tooManyFiles(site: Directive): void {
    this.problems.add(`too many included files (more than ${MAX_INCLUDED_FILES})`, { file: site.file, line: site.line },
      'every inclusion counts, also of a file included from several places; look for a mask that matches more than '
      + 'intended, or for files that include each other many times');
  }

  /**
   * Depth-first over the include graph, without recursion. An include line that names a file on
   * the current path closes a cycle: it is reported once (for its first such file), with the chain.
   */
  async walk(roots: ReadFrame[]): Promise<void> {
    this.filesRead += roots.length;
    const stack = roots;
    const onPath = new Map<string, number>(roots.map((f, i) => [f.real, i]));
    const done = new Set<string>();
    const cycleReported = new Set<Directive>();
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const site = top.sites[top.site];
      if (site === undefined) {
        stack.pop();
        if (onPath.get(top.real) === stack.length) onPath.delete(top.real);
        done.add(top.path);
        continue;
      }
      const files = this.targets.get(site)!;
      const target = files[top.target++]!;
      if (top.target === files.length) {
        top.site++;
        top.target = 0;
      }
      const real = this.reals.get(target) ?? await this.realpath(target);
      const cycleAt = onPath.get(real);
      if (cycleAt !== undefined) {
        if (!cycleReported.has(site)) {
          cycleReported.add(site);
          const sites = stack.slice(cycleAt + 1).flatMap((f) => (f.via === null ? [] : [f.via]));
          this.problems.add(`recursive include of "${target}"`, { file: site.file, line: site.line },
            `these includes form a cycle: ${chainText([...sites, site], target)}; `
            + 'a file may not include itself, directly or through other files: remove one of them');
        }
        continue;
      }
      if (done.has(target)) continue;
      let text: string;
      try {
        if (this.unreadable.has(target)) throw this.unreadable.get(target);
        text = await this.read(target);
      } catch (err) {
        this.unreadable.set(target, err);
        this.problems.add(openFailedMessage(target, err), { file: site.file, line: site.line },
          `include paths are relative to the prefix "${this.prefix}"; check the path or set -p`);
        continue;
      }
      if (!this.countRead(site)) return;
      const frame = await this.frame(target, real, text, site);
      onPath.set(real, stack.length);
      stack.push(frame);
    }
  }

  /**
   * The directives with every include replaced by the files it names (nginx parses an included
   * file in the context of the include line), without recursion; only called when the graph has
   * no cycle and every file was read. Enforces the include tree's size and depth limits and the
   * block nesting limit; null after reporting one of them.
   */
  expand(roots: readonly (readonly Directive[])[]): Directive[] | null {
    interface Frame {
      readonly list: readonly Directive[];
      index: number;
      readonly out: Directive[];
      /** Blocks open around `list`. */
      readonly depth: number;
      /** The include lines that led to `list`, innermost last. */
      readonly includes: readonly Directive[];
      /** Where `out` goes when the frame is done: wrapped as this block's body, or spliced in. */
      readonly owner: Directive | null;
      readonly parent: Frame | null;
    }
    const result: Directive[] = [];
    const stack: Frame[] = [];
    for (let i = roots.length - 1; i >= 0; i--) {
      stack.push({ list: roots[i]!, index: 0, out: result, depth: 0, includes: [], owner: null, parent: null });
    }
    let inclusions = 1;
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!;
      const d = f.list[f.index++];
      if (d === undefined) {
        stack.pop();
        if (f.parent === null) continue;
        if (f.owner !== null) f.parent.out.push({ ...f.owner, block: f.out });
        else for (const x of f.out) f.parent.out.push(x);
        continue;
      }
      if (d.name === 'include') {
        const files = this.targets.get(d) ?? [];
        if (files.length === 0) continue;
        if (f.includes.length + 1 > MAX_INCLUDE_DEPTH) {
          this.problems.add(`includes nested too deep (more than ${MAX_INCLUDE_DEPTH} levels)`, { file: d.file, line: d.line },
            `the include chain ${chainText([...f.includes, d], files[0]!)} goes deeper than Sluice reads; `
            + 'include the deepest files from a shallower one');
          return null;
        }
        inclusions += files.length;
        if (inclusions > MAX_INCLUDED_FILES) {
          this.tooManyFiles(d);
          return null;
        }
        const includes = [...f.includes, d];
        for (let i = files.length - 1; i >= 0; i--) {
          stack.push({ list: this.parsedOf(files[i]!), index: 0, out: [], depth: f.depth, includes, owner: null, parent: f });
        }
      } else if (d.block !== null) {
        if (f.depth + 1 > MAX_BLOCK_DEPTH) {
          tooManyBlocks(this.problems, d.file, d.line);
          return null;
        }
        stack.push({ list: d.block, index: 0, out: [], depth: f.depth + 1, includes: f.includes, owner: d, parent: f });
      } else {
        f.out.push(d);
      }
    }
    return result;
  }
}

/**
 * Reads and parses the whole configuration. Problems (missing files, syntax errors, include
 * cycles, the limits above) go to `problems`; the caller should not go on to check directives
 * when there are any.
 */
export async function readConfigTree(options: ReadTreeOptions, problems: Problems): Promise<ConfigTree> {
  const reader = new TreeReader(problems, options.prefix);
  let mainText = options.text;
  if (mainText === null) {
    try {
      mainText = await reader.read(options.file);
    } catch (err) {
      problems.add(openFailedMessage(options.file, err), { file: options.file, line: 0 });
      return { directives: [], sources: reader.sources };
    }
  } else {
    reader.remember(options.file, mainText);
  }
  const before = problems.count;
  // Inline text has no file that an include could name.
  const mainReal = options.file === INLINE_FILE ? '\0inline' : await reader.realpath(options.file);
  const roots = [await reader.frame(options.file, mainReal, mainText, null)];
  if (options.globalDirectives !== null && options.globalDirectives.trim() !== '') {
    // nginx applies -g before the file; an include there may not name the main file either.
    roots.push(await reader.frame(COMMAND_LINE_FILE, '\0command line', options.globalDirectives, null, { commandLine: true }));
  }
  await reader.walk([...roots]);
  if (problems.count > before) return { directives: [], sources: reader.sources };
  const directives = reader.expand([...roots].reverse().map((r) => reader.parsedOf(r.path)));
  return { directives: directives ?? [], sources: reader.sources };
}
