/**
 * ngx_http_map_module: `map SOURCE $variable { ... }`. The block is not a list of directives but
 * of `KEY VALUE` pairs plus the special words `default`, `hostnames`, `volatile` (and `include`,
 * already expanded by the reader).
 */
import { isBuiltinVariable } from '../../core/variable-names.js';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Directive } from '../parser.js';
import type { ComplexValue, MapConfig } from '../types.js';
import { TAKE2, type DirectiveSpec } from './table.js';

interface MapBuilder {
  hostnames: boolean;
  volatile: boolean;
  defaultValue: ComplexValue | null;
  readonly exact: Map<string, ComplexValue>;
  readonly suffixes: { suffix: string; value: ComplexValue }[];
  readonly prefixes: { prefix: string; value: ComplexValue }[];
  readonly regexes: { regex: RegExp; value: ComplexValue }[];
}

/** Adds a hostname key as ngx_hash_add_key(NGX_HASH_WILDCARD_KEY) does; false on a conflict. */
function addHostnameKey(m: MapBuilder, key: string, value: ComplexValue, e: Directive, cx: BuildContext): void {
  const conflict = (): void => cx.problem(`conflicting parameter "${key}"`, e, 'each map key may appear once');
  if (key.length > 1 && key.startsWith('.')) {
    // ".example.com" matches example.com itself and every subdomain.
    if (m.exact.has(key.slice(1)) || m.suffixes.some((s) => s.suffix === key)) return conflict();
    m.exact.set(key.slice(1), value);
    m.suffixes.push({ suffix: key, value });
    return;
  }
  if (key.length > 2 && key.startsWith('*.')) {
    const suffix = key.slice(1);
    if (suffix.includes('*') || m.suffixes.some((s) => s.suffix === suffix)) {
      return suffix.includes('*') ? invalidWildcard(key, e, cx) : conflict();
    }
    m.suffixes.push({ suffix, value });
    return;
  }
  if (key.length > 2 && key.endsWith('.*')) {
    const prefix = key.slice(0, -1);
    if (prefix.includes('*') || m.prefixes.some((p) => p.prefix === prefix)) {
      return prefix.includes('*') ? invalidWildcard(key, e, cx) : conflict();
    }
    m.prefixes.push({ prefix, value });
    return;
  }
  if (key.includes('*')) return invalidWildcard(key, e, cx);
  if (m.exact.has(key)) return conflict();
  m.exact.set(key, value);
}

function invalidWildcard(key: string, e: Directive, cx: BuildContext): void {
  cx.problem(`invalid hostname or wildcard "${key}"`, e, 'wildcards are "*.example.com", ".example.com" or "www.example.*"');
}

function mapEntry(m: MapBuilder, e: Directive, cx: BuildContext): void {
  if (e.block !== null) {
    cx.problem('unexpected "{"', e);
    return;
  }
  const words = [e.name, ...e.args];
  if (words.length === 1 && e.name === 'hostnames') {
    m.hostnames = true;
    return;
  }
  if (words.length === 1 && e.name === 'volatile') {
    m.volatile = true;
    return;
  }
  if (words.length !== 2) {
    cx.problem('invalid number of the map parameters', e, 'each map line is "KEY VALUE;" (quote values that contain spaces)');
    return;
  }
  let key = words[0]!;
  const value = cx.complex(words[1]!, e);
  if (value === null) return;
  if (key === 'default') {
    if (m.defaultValue !== null) {
      cx.problem('duplicate default map parameter', e);
      return;
    }
    m.defaultValue = value;
    return;
  }
  if (key.startsWith('~')) {
    const caseless = key.startsWith('~*');
    const regex = cx.regex(key.slice(caseless ? 2 : 1), caseless, e);
    if (regex !== null) m.regexes.push({ regex, value });
    return;
  }
  // A leading backslash escapes "~" and the special words ("\default" is the key "default").
  if (key.startsWith('\\')) key = key.slice(1);
  key = key.toLowerCase();
  if (m.hostnames) {
    addHostnameKey(m, key, value, e, cx);
    return;
  }
  if (m.exact.has(key)) {
    cx.problem(`conflicting parameter "${key}"`, e, 'each map key may appear once (keys are compared case-insensitively)');
    return;
  }
  m.exact.set(key, value);
}

export const mapDirectives: readonly DirectiveSpec[] = [
  {
    name: 'map', contexts: ['http'], args: TAKE2, block: 'own', repeatable: true,
    handle(d, scope, cx) {
      const [sourceText, varText] = d.args as [string, string];
      if (!varText.startsWith('$') || varText.length < 2) {
        cx.problem(`invalid variable name "${varText}"`, d, 'the second argument of "map" is the variable it defines, e.g. $connection_upgrade');
        return;
      }
      const variable = varText.slice(1).toLowerCase();
      const source = cx.complex(sourceText, d);
      const m: MapBuilder = {
        hostnames: false, volatile: false, defaultValue: null,
        exact: new Map(), suffixes: [], prefixes: [], regexes: [],
      };
      for (const e of d.block ?? []) mapEntry(m, e, cx);
      if (isBuiltinVariable(variable)) {
        cx.problem(`the duplicate "$${variable}" variable`, d, 'this is a built-in variable; give the map variable a different name');
        return;
      }
      if (source === null) return;
      cx.mapVariables.set(variable, locOf(d));
      const config: MapConfig = {
        variable, source, defaultValue: m.defaultValue, hostnames: m.hostnames, volatile: m.volatile,
        exact: m.exact, suffixes: m.suffixes, prefixes: m.prefixes, regexes: m.regexes, loc: locOf(d),
      };
      // A map variable is changeable in nginx (NGX_HTTP_VAR_CHANGEABLE): a second map of the same
      // variable is no error, it takes the variable over (configs that repeat the classic
      // $connection_upgrade map in every site file rely on it).
      const maps = scope.http!.maps;
      const earlier = maps.findIndex((x) => x.variable === variable);
      if (earlier !== -1) maps.splice(earlier, 1);
      maps.push(config);
    },
  },
];
