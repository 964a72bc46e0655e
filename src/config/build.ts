/**
 * Walks the directive tree with the directive tables (nginx's ngx_conf_handler): unknown names,
 * wrong context, block vs `;`, arity and duplicates are checked here, uniformly, before a
 * directive's handler records it in the drafts. Every problem is collected; a directive with a
 * problem is skipped and the walk goes on.
 */
import type { BuildContext } from './build-context.js';
import type { Context, MainDraft, Scope } from './draft.js';
import { DIRECTIVES_BY_NAME } from './directives/index.js';
import { nginxOnlyHint } from './nginx-directives.js';
import type { Directive } from './parser.js';
import { closest } from './suggest.js';

function contextName(c: Context): string {
  return c === 'main' ? 'the main context' : c;
}

function unknownDirective(d: Directive, scope: Scope, cx: BuildContext): void {
  const message = `unknown directive "${d.name}"`;
  const nginxHint = nginxOnlyHint(d.name);
  if (nginxHint !== null) {
    cx.problem(message, d, nginxHint);
    return;
  }
  // Prefer names valid where the directive was written, then any known name.
  const here: string[] = [];
  const elsewhere: string[] = [];
  for (const [name, specs] of DIRECTIVES_BY_NAME) {
    (specs.some((s) => s.contexts.includes(scope.context)) ? here : elsewhere).push(name);
  }
  const guess = closest(d.name, here) ?? closest(d.name, elsewhere);
  cx.problem(message, d, guess !== null ? `did you mean "${guess}"?` : undefined);
}

function dispatch(d: Directive, scope: Scope, seen: Set<string>, cx: BuildContext): void {
  const specs = DIRECTIVES_BY_NAME.get(d.name);
  if (specs === undefined) {
    unknownDirective(d, scope, cx);
    return;
  }
  const spec = specs.find((s) => s.contexts.includes(scope.context));
  if (spec === undefined) {
    const allowed = [...new Set(specs.flatMap((s) => s.contexts))].map(contextName).join(', ');
    cx.problem(`"${d.name}" directive is not allowed here`, d, `"${d.name}" is allowed in: ${allowed}`);
    return;
  }
  if (spec.block !== undefined && d.block === null) {
    cx.problem(`directive "${d.name}" has no opening "{"`, d);
    return;
  }
  if (spec.block === undefined && d.block !== null) {
    cx.problem(`directive "${d.name}" is not terminated by ";"`, d);
    return;
  }
  const [min, max] = spec.args;
  if (d.args.length < min || d.args.length > max) {
    cx.problem(`invalid number of arguments in "${d.name}" directive`, d);
    return;
  }
  if (spec.repeatable !== true) {
    if (seen.has(d.name)) {
      cx.problem(`"${d.name}" directive is duplicate`, d, `"${d.name}" may appear once here; remove one of them`);
      return;
    }
    seen.add(d.name);
  }
  const body = spec.handle(d, scope, cx);
  if (spec.block === 'children' && body !== undefined && d.block !== null) {
    walk(d.block, body, cx);
    spec.finish?.(d, body, cx);
  }
}

function walk(list: readonly Directive[], scope: Scope, cx: BuildContext): void {
  const seen = new Set<string>();
  for (const d of list) dispatch(d, scope, seen, cx);
}

/** Runs every directive of the main context through the tables and returns the filled drafts. */
export function buildDrafts(directives: readonly Directive[], cx: BuildContext): MainDraft {
  const main: MainDraft = { events: null, http: null };
  const scope: Scope = { context: 'main', main, http: null, server: null, location: null, upstream: null, settings: null };
  walk(directives, scope, cx);
  return main;
}
