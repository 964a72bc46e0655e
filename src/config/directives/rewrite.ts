/**
 * ngx_http_rewrite_module: `set`, `if`, `rewrite`, `return`, `break`, `rewrite_log`,
 * `uninitialized_variable_warn`. The script lines of a level are recorded in file order
 * (RewriteStep in config/types.ts); routing/rewrite-run.ts runs them. Messages are nginx's.
 */
import { BUILTIN_VARIABLES } from '../../core/variable-names.js';
import type { BuildContext } from '../build-context.js';
import type { LocationDraft, Scope } from '../draft.js';
import { locOf } from '../build-context.js';
import type { Directive } from '../parser.js';
import { parseCondition } from '../rewrite-condition.js';
import type { ComplexValue, RewriteStep } from '../types.js';
import { NOARGS, ONE_OR_MORE, TAKE1, TAKE12, TAKE2, TAKE23, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

/**
 * The location directives nginx also takes inside `if` in a location (NGX_HTTP_LIF_CONF in
 * nginx 1.22's modules); the build step records them with their location handler.
 */
export const IF_IN_LOCATION: ReadonlySet<string> = new Set([
  'access_log', 'add_header', 'add_trailer', 'charset', 'error_page', 'expires', 'gzip', 'limit_rate', 'limit_rate_after',
  'override_charset', 'proxy_pass', 'root', 'sendfile', 'source_charset',
]);

/** Where rewrite directives may be written (nginx: server, location and `if` in either). */
const SCRIPT_CONTEXTS = ['server', 'location', 'sif', 'lif'] as const;

function addStep(scope: Scope, step: RewriteStep): void {
  (settingsOf(scope).rewriteSteps ??= []).push(step);
}

/** True for a URL a `return` or `rewrite` replacement makes a redirect of (nginx compares the first bytes). */
function isRedirectUrl(text: string): boolean {
  return text.startsWith('http://') || text.startsWith('https://') || text.startsWith('$scheme');
}

/** `return CODE [TEXT]`, `return CODE URL`, `return URL` (ngx_http_rewrite_return). */
function returnStep(d: Directive, scope: Scope, cx: BuildContext): void {
  const first = d.args[0]!;
  let code: number;
  let textArg: string | null;
  if (/^[0-9]+$/.test(first)) {
    code = Number(first);
    if (code > 999) {
      cx.problem(`invalid return code "${first}"`, d, 'status codes are 0 to 999');
      return;
    }
    textArg = d.args[1] ?? null;
  } else if (d.args.length === 1 && isRedirectUrl(first)) {
    code = 302;
    textArg = first;
  } else {
    cx.problem(`invalid return code "${first}"`, d, 'use "return CODE [TEXT]", "return CODE URL" or "return URL"');
    return;
  }
  let text: ComplexValue | null = null;
  if (textArg !== null) {
    text = cx.complex(textArg, d);
    if (text === null) return;
  }
  addStep(scope, { op: 'return', action: { code, text } });
}

/** `set $name value` (ngx_http_rewrite_set): any `set` defines the variable for the whole configuration. */
function setStep(d: Directive, scope: Scope, cx: BuildContext): void {
  const target = d.args[0]!;
  if (!target.startsWith('$')) {
    cx.problem(`invalid variable name "${target}"`, d, 'the variable to set is written with "$": set $name value;');
    return;
  }
  const name = target.slice(1).toLowerCase();
  if (name === '' || !/^[a-z0-9_]+$/.test(name)) {
    cx.problem(`invalid variable name "${target}"`, d, 'a variable name is letters, digits and "_"');
    return;
  }
  // nginx's built-in variables cannot be set, except those it marks changeable ($args, $limit_rate).
  if (name !== 'args' && name !== 'limit_rate' && BUILTIN_VARIABLES.includes(name)) {
    cx.problem(`the duplicate "${name}" variable`, d, `$${name} is a built-in variable; set a variable of another name`);
    return;
  }
  const value = cx.complex(d.args[1]!, d);
  if (value === null) return;
  // -1: the arguments; -2: the request's limit_rate; else the set variable's slot.
  let index = name === 'args' ? -1 : -2;
  if (name !== 'args' && name !== 'limit_rate') {
    index = cx.setVariables.get(name) ?? cx.setVariables.size;
    cx.setVariables.set(name, index);
  }
  addStep(scope, { op: 'set', name, index, value });
}

/** `rewrite REGEX REPLACEMENT [last|break|redirect|permanent]` (ngx_http_rewrite). */
function rewriteStep(d: Directive, scope: Scope, cx: BuildContext): void {
  let raw = d.args[1]!;
  if (raw === '') {
    cx.problem('empty replacement', d);
    return;
  }
  const regex = cx.regex(d.args[0]!, false, d);
  if (regex === null) return;
  // A last "?" drops the request's own arguments.
  const addArgs = !raw.endsWith('?');
  if (!addArgs) raw = raw.slice(0, -1);
  let status: 0 | 301 | 302 = isRedirectUrl(raw) ? 302 : 0;
  let breakCycle = false;
  let stop = status !== 0;
  const flag = d.args[2];
  if (flag !== undefined) {
    if (flag === 'break') breakCycle = true;
    else if (flag === 'redirect') status = 302;
    else if (flag === 'permanent') status = 301;
    else if (flag !== 'last') {
      cx.problem(`invalid parameter "${flag}"`, d, 'the flag is last, break, redirect or permanent');
      return;
    }
    stop = true;
  }
  // An internal rewrite splits the new URI and arguments at the first "?"; a redirect keeps it in the URL.
  const q = status === 0 ? raw.indexOf('?') : -1;
  const uri = cx.complex(q === -1 ? raw : raw.slice(0, q), d);
  const args = q === -1 ? null : cx.complex(raw.slice(q + 1), d);
  if (uri === null || (q !== -1 && args === null)) return;
  addStep(scope, {
    op: 'rewrite', regex, source: d.args[0]!, uri, args, addArgs, status, breakCycle, stop,
    urlHasArgs: status !== 0 && raw.includes('?'),
  });
}

/**
 * `if (condition) { ... }` (ngx_http_rewrite_if): in a server its body holds script lines; in a
 * location it also makes a nameless location-like level, inheriting from the location, that
 * serves the request when the condition is true.
 */
function ifBlock(d: Directive, scope: Scope, cx: BuildContext): Scope | void {
  const condition = parseCondition(d, cx);
  if (condition === null) return;
  const steps: RewriteStep[] = [];
  if (scope.context === 'server') {
    addStep(scope, { op: 'if', condition, level: null, steps });
    return { ...scope, context: 'sif', settings: { rewriteSteps: steps, rewriteIf: true } };
  }
  const parent = scope.location!;
  const level: LocationDraft = {
    modifier: 'if', pattern: parent.pattern, regex: null, locations: [], settings: { rewriteSteps: steps, rewriteIf: true },
    healthChecks: [], proxyPassWritten: false, at: locOf(d),
  };
  addStep(scope, { op: 'if', condition, level: parent.locations.length, steps });
  parent.locations.push(level);
  return { ...scope, context: 'lif', location: level, settings: level.settings };
}

export const rewriteDirectives: readonly DirectiveSpec[] = [
  // nginx runs the first `return` it reaches in the script; later ones may be reached through `if`.
  { name: 'return', contexts: SCRIPT_CONTEXTS, args: TAKE12, repeatable: true, handle: returnStep },
  { name: 'set', contexts: SCRIPT_CONTEXTS, args: TAKE2, repeatable: true, handle: setStep },
  { name: 'rewrite', contexts: SCRIPT_CONTEXTS, args: TAKE23, repeatable: true, handle: rewriteStep },
  { name: 'break', contexts: SCRIPT_CONTEXTS, args: NOARGS, repeatable: true, handle: (_d, scope) => addStep(scope, { op: 'break' }) },
  { name: 'if', contexts: ['server', 'location'], args: ONE_OR_MORE, block: 'children', repeatable: true, handle: ifBlock },
  {
    name: 'rewrite_log', contexts: ['http', ...SCRIPT_CONTEXTS], args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) settingsOf(scope).rewriteLog = v;
    },
  },
  {
    name: 'uninitialized_variable_warn', contexts: ['http', ...SCRIPT_CONTEXTS], args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) settingsOf(scope).uninitializedVariableWarn = v;
    },
  },
];
