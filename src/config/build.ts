/**
 * Walks the directive tree with the directive tables (nginx's ngx_conf_handler): unknown names,
 * wrong context, block vs `;`, arity and duplicates are checked here, uniformly, before a
 * directive's handler records it in the drafts. Every problem is collected; a directive with a
 * problem is skipped and the walk goes on.
 */
import type { BuildContext } from './build-context.js';
import type { Context, MainDraft, Scope } from './draft.js';
import { DIRECTIVES_BY_NAME } from './directives/index.js';
import type { DirectiveSpec } from './directives/table.js';
import { nginxOnlyHint } from './nginx-directives.js';
import { IF_IN_LOCATION } from './directives/rewrite.js';
import type { Directive } from './parser.js';
import { closest } from './suggest.js';

function contextName(c: Context): string {
  return c === 'main' ? 'the main context' : c === 'sif' ? 'if in server' : c === 'lif' ? 'if in location' : c;
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

/** A block whose body is walked next, and what to call when that is done. */
interface Body {
  readonly d: Directive;
  readonly spec: DirectiveSpec;
  readonly scope: Scope;
}

/** Checks one directive and runs its handler; returns the body to walk for a 'children' block. */
function dispatch(d: Directive, scope: Scope, seen: Set<string>, cx: BuildContext): Body | undefined {
  const specs = DIRECTIVES_BY_NAME.get(d.name);
  if (specs === undefined) {
    unknownDirective(d, scope, cx);
    return undefined;
  }
  // nginx's "if in location" takes some location directives (NGX_HTTP_LIF_CONF): their location handler records them in the block's level.
  const context = scope.context === 'lif' && IF_IN_LOCATION.has(d.name) ? 'location' : scope.context;
  const spec = specs.find((s) => s.contexts.includes(context));
  if (spec === undefined) {
    const allowed = [...new Set(specs.flatMap((s) => s.contexts))].map(contextName).join(', ');
    cx.problem(`"${d.name}" directive is not allowed here`, d, `"${d.name}" is allowed in: ${allowed}`);
    return undefined;
  }
  if (spec.block !== undefined && d.block === null) {
    cx.problem(`directive "${d.name}" has no opening "{"`, d);
    return undefined;
  }
  if (spec.block === undefined && d.block !== null) {
    cx.problem(`directive "${d.name}" is not terminated by ";"`, d);
    return undefined;
  }
  const [min, max] = spec.args;
  if (d.args.length < min || d.args.length > max) {
    cx.problem(`invalid number of arguments in "${d.name}" directive`, d);
    return undefined;
  }
  if (spec.repeatable !== true) {
    if (seen.has(d.name)) {
      cx.problem(`"${d.name}" directive is duplicate`, d, `"${d.name}" may appear once here; remove one of them`);
      return undefined;
    }
    seen.add(d.name);
  }
  const body = spec.handle(d, scope, cx);
  if (spec.block === 'children' && body !== undefined && d.block !== null) return { d, spec, scope: body };
  return undefined;
}

/**
 * Walks a list and every 'children' block in it, depth first in file order, with an explicit
 * stack: nested locations may be thousands deep (nginx accepts 5,000).
 */
function walk(list: readonly Directive[], scope: Scope, cx: BuildContext): void {
  interface Frame {
    readonly list: readonly Directive[];
    index: number;
    readonly scope: Scope;
    readonly seen: Set<string>;
    readonly body: Body | null;
  }
  const stack: Frame[] = [{ list, index: 0, scope, seen: new Set(), body: null }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    const d = f.list[f.index++];
    if (d === undefined) {
      stack.pop();
      if (f.body !== null) f.body.spec.finish?.(f.body.d, f.body.scope, cx);
      continue;
    }
    const body = dispatch(d, f.scope, f.seen, cx);
    if (body !== undefined) stack.push({ list: body.d.block!, index: 0, scope: body.scope, seen: new Set(), body });
  }
}

/** Runs every directive of the main context through the tables and returns the filled drafts. */
export function buildDrafts(directives: readonly Directive[], cx: BuildContext): MainDraft {
  const main: MainDraft = { events: null, http: null };
  const scope: Scope = { context: 'main', main, http: null, server: null, location: null, upstream: null, settings: null };
  walk(directives, scope, cx);
  return main;
}
