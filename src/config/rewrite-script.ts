/**
 * The compiled form of ngx_http_rewrite_module's directives: each server or location level has one
 * script, its `set`, `if`, `rewrite`, `return` and `break` lines in file order (nginx compiles them
 * into one code array per level; an `if` block's lines go into its enclosing level's array).
 * src/routing/rewrite-run.ts runs a script; src/config/directives/rewrite.ts builds it.
 */
import type { ComplexValue, ReturnAction } from './types.js';

/** The file tests of `if`: `-f` plain file, `-d` directory, `-e` exists, `-x` executable. */
export type FileTest = 'f' | 'd' | 'e' | 'x';

/** One `if (...)` condition, as ngx_http_rewrite_if_condition reads it. */
export type RewriteCondition =
  /** `($var)`: false when the value is empty or "0". */
  | { readonly kind: 'value'; readonly value: ComplexValue }
  /** `($var = text)` / `($var != text)`; the text may hold variables. */
  | { readonly kind: 'compare'; readonly value: ComplexValue; readonly other: ComplexValue; readonly negate: boolean }
  /** `($var ~ re)`, `~*` (caseless), `!~`, `!~*`; a match sets the captures. */
  | { readonly kind: 'regex'; readonly value: ComplexValue; readonly regex: RegExp; readonly source: string; readonly negate: boolean }
  /** `(-f path)`, `(!-f path)` and the others of {@link FileTest}. */
  | { readonly kind: 'file'; readonly path: ComplexValue; readonly test: FileTest; readonly negate: boolean };

/** `rewrite REGEX REPLACEMENT [FLAG]`, compiled. */
export interface RewriteRule {
  readonly op: 'rewrite';
  readonly regex: RegExp;
  /** The regex as written, for the rewrite_log lines. */
  readonly source: string;
  /** The new URI (for a redirect: the whole new URL). */
  readonly uri: ComplexValue;
  /** The arguments written after the first `?` of an internal rewrite, or null when none. */
  readonly args: ComplexValue | null;
  /** The request's own arguments are kept (appended); false when the replacement ends with `?`. */
  readonly addArgs: boolean;
  /** 301 (`permanent`), 302 (`redirect`, or a replacement starting with http://, https://, $scheme), 0 otherwise. */
  readonly status: 0 | 301 | 302;
  /** `break`: stop the script and stay in the location. */
  readonly breakCycle: boolean;
  /** `last`, `break` or a redirect: the script ends after a match. */
  readonly stop: boolean;
  /** For a redirect: the URL already has a `?`, so the request's arguments follow a `&`. */
  readonly urlHasArgs: boolean;
}

export type RewriteStep =
  /** `set $name value`; `index` is the variable's slot in RequestContext.setValues, -1 for `$args`. */
  | { readonly op: 'set'; readonly name: string; readonly index: number; readonly value: ComplexValue }
  | RewriteRule
  | { readonly op: 'return'; readonly action: ReturnAction }
  | { readonly op: 'break' }
  /**
   * `if (...) { ... }`; `level`: for an `if` in a location, the index among the location's
   * `locations` of the configuration the block makes (nginx's nameless location), which serves the
   * request when the condition is true; null for an `if` in a server.
   */
  | { readonly op: 'if'; readonly condition: RewriteCondition; readonly level: number | null; readonly steps: readonly RewriteStep[] };

/** ngx_http_rewrite_module's settings of one level. */
export interface RewriteSettings {
  /** The level's own script (nginx does not inherit scripts); null when it has none. */
  readonly script: readonly RewriteStep[] | null;
  /** `rewrite_log`: notice-level lines for each regex tried and each rewrite. @default false */
  readonly log: boolean;
  /** `uninitialized_variable_warn`: warn when a `set` variable is read before it is set. @default true */
  readonly uninitializedWarn: boolean;
}
