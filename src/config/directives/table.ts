/**
 * The shape of a directive table entry (nginx's ngx_command_t): the name, where it may appear,
 * how many arguments it takes, whether it opens a block, whether it may repeat at one level,
 * and the handler that records it in the drafts.
 */
import type { BuildContext } from '../build-context.js';
import type { Context, Scope, SettingsDraft } from '../draft.js';
import type { Directive } from '../parser.js';

/** [min, max] number of arguments after the name (nginx's NGX_CONF_TAKE*, 1MORE, ...). */
export type Arity = readonly [number, number];

export const NOARGS: Arity = [0, 0];
export const TAKE1: Arity = [1, 1];
export const TAKE2: Arity = [2, 2];
export const TAKE12: Arity = [1, 2];
export const TAKE23: Arity = [2, 3];
export const ONE_OR_MORE: Arity = [1, Number.POSITIVE_INFINITY];
export const TWO_OR_MORE: Arity = [2, Number.POSITIVE_INFINITY];

/** The contexts where http-level settings may be written and are inherited downwards. */
export const HTTP_SERVER_LOCATION: readonly Context[] = ['http', 'server', 'location'];

export interface DirectiveSpec {
  readonly name: string;
  readonly contexts: readonly Context[];
  readonly args: Arity;
  /**
   * 'children': the block holds ordinary directives, walked in the scope `handle` returns.
   * 'own': the handler reads the block itself (map). Absent: the directive ends with `;`.
   */
  readonly block?: 'children' | 'own';
  /** May appear more than once at one level; otherwise nginx's `"x" directive is duplicate`. */
  readonly repeatable?: boolean;
  /** Records the directive; a block directive returns the scope for its body (or void on error). */
  readonly handle: (d: Directive, scope: Scope, cx: BuildContext) => Scope | void;
  /** Called after a 'children' block has been walked, with the scope its body used. */
  readonly finish?: (d: Directive, body: Scope, cx: BuildContext) => void;
}

type Keys<T, V> = { [K in keyof T]-?: NonNullable<T[K]> extends V ? (V extends NonNullable<T[K]> ? K : never) : never }[keyof T];

/** The settings draft of the current level (always present in http, server and location). */
export function settingsOf(scope: Scope): SettingsDraft {
  if (scope.settings === null) throw new Error(`no settings in context ${scope.context}`);
  return scope.settings;
}

/** A duration setting such as `proxy_read_timeout 60s`. */
export function durationSetting(name: string, key: Keys<SettingsDraft, number>): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) settingsOf(scope)[key] = v;
    },
  };
}

/** A size setting such as `client_max_body_size 10m`, in bytes. */
export function sizeSetting(name: string, key: Keys<SettingsDraft, number>): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.size(d, d.args[0]!);
      if (v !== null) settingsOf(scope)[key] = v;
    },
  };
}

/** A whole-number setting such as `proxy_next_upstream_tries 3`. */
export function numberSetting(name: string, key: Keys<SettingsDraft, number>): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.number(d, d.args[0]!);
      if (v !== null) settingsOf(scope)[key] = v;
    },
  };
}

/** nginx's flag slot: `on` or `off`, with nginx's message for anything else. */
export function parseFlag(d: Directive, cx: BuildContext): boolean | null {
  const v = d.args[0]!;
  if (v === 'on' || v === 'off') return v === 'on';
  cx.problem(`invalid value "${v}" in "${d.name}" directive, it must be "on" or "off"`, d);
  return null;
}

/** An enum argument: `invalid value "x" in "name" directive, it must be "a" or "b"`. */
export function parseEnum<T extends string>(d: Directive, text: string, allowed: readonly T[], cx: BuildContext): T | null {
  if ((allowed as readonly string[]).includes(text)) return text as T;
  const list = allowed.map((a) => `"${a}"`);
  const spoken = list.length <= 2 ? list.join(' or ') : `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]!}`;
  cx.problem(`invalid value "${text}" in "${d.name}" directive, it must be ${spoken}`, d);
  return null;
}
