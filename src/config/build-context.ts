/**
 * What directive handlers share while the tree is walked: the problem list, the prefix for
 * relative paths, and the variable references to check once every `map` has been seen.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { compileComplexValue } from './complex-value.js';
import type { Directive } from './parser.js';
import type { Problems } from './problems.js';
import { compileRegex } from './regex.js';
import type { ComplexValue, SourceLoc } from './types.js';
import { parseDuration, parseNumber, parseSize } from './units.js';

/** RFC 9110 5.6.2 token. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What a header value can never carry (RFC 9110 5.5); HTAB is allowed. */
const CONTROL_CHARACTER = /[\0-\x08\x0a-\x1f\x7f]/;

/** A variable used somewhere, checked at the end (maps may be defined after use). */
export interface VariableRef {
  readonly name: string;
  readonly at: SourceLoc;
}

export function locOf(d: Directive): SourceLoc {
  return { file: d.file, line: d.line };
}

export class BuildContext {
  readonly variableRefs: VariableRef[] = [];
  /** Variables defined by `map`, with where. */
  readonly mapVariables = new Map<string, SourceLoc>();
  /** Named captures of every regex: nginx makes each one a variable (`(?<user>..)` -> `$user`). */
  readonly captureVariables = new Set<string>();
  /** Variables made by `set`, each with its slot in RequestContext.setValues (nginx: any `set` anywhere defines one). */
  readonly setVariables = new Map<string, number>();

  /**
   * Every file a directive named that was read while loading (certificates, keys, DH parameters,
   * ticket keys, OCSP responses), by absolute path: a primary process hands them to its workers,
   * which then never read them themselves (they may run as `user`, who cannot).
   */
  readonly filesRead = new Map<string, Buffer>();

  constructor(readonly problems: Problems, readonly prefix: string, readonly preread: ReadonlyMap<string, Buffer> | null = null) {}

  /** A file's bytes: what the primary read (`preread`) when given, else the disk. Throws as readFileSync does. */
  readFile(path: string): Buffer {
    const bytes = this.preread?.get(path) ?? readFileSync(path);
    this.filesRead.set(path, bytes);
    return bytes;
  }

  problem(message: string, at: Directive | SourceLoc, hint?: string): void {
    this.problems.add(message, 'name' in at ? locOf(at) : at, hint);
  }

  /** A warning (nginx's `[warn]`): printed by `-t` and logged, but the configuration loads. */
  warn(message: string, at: Directive | SourceLoc, hint?: string): void {
    this.problems.warn(message, 'name' in at ? locOf(at) : at, hint);
  }

  /** Compiles a value that may contain variables; reports malformed references. */
  complex(raw: string, d: Directive): ComplexValue | null {
    const result = compileComplexValue(raw);
    if (!result.ok) {
      this.problem(result.message, d);
      return null;
    }
    for (const name of result.variables) this.variableRefs.push({ name, at: locOf(d) });
    return result.value;
  }

  /**
   * A header name and value for `add_header` / `proxy_set_header`: the name must be a token and
   * the literal text of the value must stay on one line (a variable's value is checked when the
   * request evaluates it, src/proxy/header-value.ts). nginx accepts both and writes a broken head.
   */
  headerField(name: string, raw: string, d: Directive): ComplexValue | null {
    let ok = true;
    if (!HTTP_TOKEN.test(name)) {
      this.problem(`invalid header name "${name}" in "${d.name}" directive`, d, 'a header name is letters, digits and !#$%&\'*+-.^_`|~ only, without spaces or ":"');
      ok = false;
    }
    const value = this.complex(raw, d);
    if (value === null) return null;
    if (value.parts.some((p) => 'text' in p && CONTROL_CHARACTER.test(p.text))) {
      this.problem(`the value of header "${name}" in "${d.name}" directive contains a control character`, d, 'a header value is one line: remove the line break (\\n, \\r) or other control character from it');
      ok = false;
    }
    return ok ? value : null;
  }

  regex(source: string, caseless: boolean, d: Directive): RegExp | null {
    const result = compileRegex(source, caseless);
    if (!result.ok) {
      this.problem(result.message, d, 'JavaScript regular expressions are used; PCRE-only syntax needs rewriting');
      return null;
    }
    for (const m of result.regex.source.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)) {
      this.captureVariables.add(m[1]!.toLowerCase());
    }
    return result.regex;
  }

  /** A path relative to the prefix made absolute (nginx: ngx_conf_full_name). */
  path(p: string): string {
    return resolve(this.prefix, p);
  }

  /** A duration argument in ms, or null after reporting nginx's `"x" directive invalid value`. */
  duration(d: Directive, text: string): number | null {
    const v = parseDuration(text);
    if (v === null) this.problem(`"${d.name}" directive invalid value`, d, durationHint(text));
    return v;
  }

  /** A size argument in bytes (`512`, `8k`, `1m`), or null after nginx's `"x" directive invalid value`. */
  size(d: Directive, text: string): number | null {
    const v = parseSize(text);
    if (v === null) this.problem(`"${d.name}" directive invalid value`, d, `"${text}" is not a size; use bytes or a number with k, m or g ("512", "8k", "1m")`);
    return v;
  }

  number(d: Directive, text: string): number | null {
    const v = parseNumber(text);
    if (v === null) this.problem(`"${d.name}" directive invalid value`, d, `"${text}" is not a whole number`);
    return v;
  }
}

function durationHint(text: string): string {
  return `"${text}" is not a duration; use a number with ms, s, m, h, d, w, M or y ("60s", "1h30m"); a bare number means seconds`;
}
