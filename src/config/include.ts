/**
 * Reading the configuration: the main file, the `-g` directives and every `include`d file, with
 * includes expanded in place (nginx parses an included file in the context of the `include`).
 * Include paths are relative to the prefix; a pattern (`*`, `?`, `[...]`) that matches nothing is
 * fine, a plain path that does not exist is an error, and a file that includes itself (directly or
 * through others) is an error rather than nginx's endless recursion.
 */
import { constants as osConstants } from 'node:os';
import { readFile, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { expandGlob, hasGlobMagic } from './glob.js';
import { parseConfigText, type Directive } from './parser.js';
import type { Problems } from './problems.js';

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

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  EMFILE: 'Too many open files',
  ENAMETOOLONG: 'File name too long',
};

/** nginx's `open() "PATH" failed (2: No such file or directory)`. */
export function openFailedMessage(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? 'EIO';
  const errno = (osConstants.errno as Record<string, number>)[code] ?? 0;
  return `open() "${path}" failed (${errno}: ${ERRNO_TEXT[code] ?? code})`;
}

class TreeReader {
  readonly sources: Source[] = [];
  private readonly texts = new Map<string, string>();

  constructor(private readonly problems: Problems, private readonly prefix: string) {}

  /** Reads a file once (a file included twice is parsed twice but read and dumped once). */
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

  async expand(list: readonly Directive[], stack: readonly string[]): Promise<Directive[]> {
    const out: Directive[] = [];
    for (const d of list) {
      if (d.name === 'include') {
        out.push(...await this.include(d, stack));
      } else if (d.block !== null) {
        out.push({ ...d, block: await this.expand(d.block, stack) });
      } else {
        out.push(d);
      }
    }
    return out;
  }

  private async include(d: Directive, stack: readonly string[]): Promise<Directive[]> {
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
    let files: string[];
    if (hasGlobMagic(d.args[0]!)) {
      files = await expandGlob(pattern);
    } else {
      files = [pattern];
    }
    const out: Directive[] = [];
    for (const file of files) {
      const real = await realpath(file).catch(() => file);
      if (stack.includes(real)) {
        this.problems.add(`recursive include of "${file}"`, at,
          'a file may not include itself, directly or through other files; remove this include');
        continue;
      }
      let text: string;
      try {
        text = await this.read(file);
      } catch (err) {
        this.problems.add(openFailedMessage(file, err), at,
          `include paths are relative to the prefix "${this.prefix}"; check the path or set -p`);
        continue;
      }
      const parsed = parseConfigText(text, file, this.problems);
      out.push(...await this.expand(parsed, [...stack, real]));
    }
    return out;
  }
}

/**
 * Reads and parses the whole configuration. Problems (missing files, syntax errors, include
 * cycles) go to `problems`; the caller should not go on to check directives when there are any.
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
  const mainStack = options.file === INLINE_FILE ? [] : [await realpath(options.file).catch(() => options.file)];

  const directives: Directive[] = [];
  if (options.globalDirectives !== null && options.globalDirectives.trim() !== '') {
    const parsed = parseConfigText(options.globalDirectives, COMMAND_LINE_FILE, problems, { commandLine: true });
    directives.push(...await reader.expand(parsed, mainStack));
  }
  const parsed = parseConfigText(mainText, options.file, problems);
  directives.push(...await reader.expand(parsed, mainStack));
  return { directives, sources: reader.sources };
}
