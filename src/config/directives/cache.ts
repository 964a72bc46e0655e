/**
 * The proxy cache (ngx_http_proxy_module, ngx_http_file_cache.c): `proxy_cache_path` (http) names
 * a zone and its directory; `proxy_cache`, `proxy_cache_key`, `proxy_cache_valid`,
 * `proxy_cache_methods`, `proxy_cache_min_uses`, `proxy_cache_convert_head`, `proxy_cache_bypass`,
 * `proxy_no_cache`, `proxy_cache_use_stale`, `proxy_cache_lock` (+ `_timeout`, `_age`),
 * `proxy_cache_revalidate`, `proxy_cache_background_update` and `proxy_cache_max_range_offset` (http, server, location; each
 * inherited on its own) say what a level caches. The runtime is in src/proxy/cache/.
 */
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { HttpDraft, Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { CacheSettings, CacheValidRule, ComplexValue, SourceLoc } from '../types.js';
import { parseDuration, parseSize } from '../units.js';
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

type Draft = { -readonly [K in keyof CacheSettings]?: CacheSettings[K] };

function draftOf(scope: Scope): Draft {
  return (settingsOf(scope).cache ??= {});
}

/** nginx's smallest keys_zone: two pages (ngx_http_file_cache_set_slot). */
const MIN_KEYS_ZONE = 8192;

/** The methods proxy_cache_methods knows (ngx_http_upstream_cache_method_mask). */
const CACHE_METHODS = ['GET', 'HEAD', 'POST'];

/** `proxy_cache ZONE` lines by http block, checked once every proxy_cache_path has been read. */
const zoneRefs = new WeakMap<HttpDraft, { name: string; at: SourceLoc }[]>();

function condition(name: string, key: 'bypass' | 'noCache'): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true,
    handle(d, scope, cx) {
      const values: ComplexValue[] = [];
      for (const a of d.args) {
        const v = cx.complex(a, d);
        if (v !== null) values.push(v);
      }
      // Several lines at one level add up (nginx pushes each onto one array).
      const draft = draftOf(scope);
      draft[key] = [...(draft[key] ?? []), ...values];
    },
  };
}

/**
 * `proxy_cache_path PATH [levels=L1[:L2[:L3]]] [use_temp_path=on|off] keys_zone=NAME:SIZE
 * [inactive=TIME] [max_size=SIZE] [min_free=SIZE] [manager_*=...] [loader_*=...]`, with nginx's
 * messages. The manager_ and loader_ pacing parameters are checked and not needed (the manager
 * and loader are one pass each, see src/proxy/cache/cache-zone.ts).
 */
function cachePath(d: Directive, scope: Scope, cx: BuildContext): void {
  const http = scope.http as HttpDraft;
  let levels: number[] = [];
  let zone: { name: string; size: number } | null = null;
  let inactive = 600_000;
  let maxSize = 0;
  let minFree = 0;
  let useTempPath = true;
  for (const a of d.args.slice(1)) {
    const eq = a.indexOf('=');
    const param = eq < 0 ? a : a.slice(0, eq);
    const value = eq < 0 ? '' : a.slice(eq + 1);
    switch (param) {
      case 'levels': {
        const parts = value.split(':');
        if (value === '' || parts.length > 3 || parts.some((p) => p !== '1' && p !== '2')) {
          cx.problem(`invalid "levels" "${a}"`, d, 'levels are up to three of 1 or 2, separated by ":" ("levels=1:2")');
          return;
        }
        levels = parts.map(Number);
        break;
      }
      case 'keys_zone': {
        const colon = value.lastIndexOf(':');
        const size = colon <= 0 ? null : parseSize(value.slice(colon + 1));
        if (size === null) {
          cx.problem(`invalid keys zone size "${a}"`, d, 'write keys_zone=NAME:SIZE ("keys_zone=assets:10m")');
          return;
        }
        if (size < MIN_KEYS_ZONE) {
          cx.problem(`keys zone "${a}" is too small`, d, 'a keys zone is at least 8k; one megabyte holds about 8000 keys');
          return;
        }
        zone = { name: value.slice(0, colon), size };
        break;
      }
      case 'inactive':
      case 'max_size':
      case 'min_free': {
        const v = param === 'inactive' ? parseDuration(value) : parseSize(value);
        if (v === null) {
          cx.problem(`invalid ${param} value "${a}"`, d, param === 'inactive' ? 'a duration ("10m", "1d")' : 'a size ("10g", "512m")');
          return;
        }
        if (param === 'inactive') inactive = v;
        else if (param === 'max_size') maxSize = v;
        else minFree = v;
        break;
      }
      case 'use_temp_path':
        if (value !== 'on' && value !== 'off') {
          cx.problem(`invalid use_temp_path value "${a}", it must be "on" or "off"`, d);
          return;
        }
        useTempPath = value === 'on';
        break;
      case 'loader_files':
      case 'manager_files':
      case 'loader_sleep':
      case 'manager_sleep':
      case 'loader_threshold':
      case 'manager_threshold': {
        const v = param.endsWith('_files') ? (/^\d+$/.test(value) ? Number(value) : null) : parseDuration(value);
        if (v === null) {
          cx.problem(`invalid ${param} value "${a}"`, d);
          return;
        }
        break;
      }
      default:
        cx.problem(`invalid parameter "${a}"`, d, 'proxy_cache_path takes levels=, use_temp_path=, keys_zone=, inactive=, max_size=, min_free=, manager_* and loader_* parameters');
        return;
    }
  }
  if (zone === null) {
    cx.problem(`"${d.name}" must have "keys_zone" parameter`, d, 'add keys_zone=NAME:SIZE ("keys_zone=assets:10m")');
    return;
  }
  if (http.cacheZones.has(zone.name)) {
    cx.problem(`duplicate zone "${zone.name}"`, d, 'each proxy_cache_path needs its own keys_zone name');
    return;
  }
  const path = cx.path(d.args[0]!);
  for (const other of http.cacheZones.values()) {
    if (other.path === path) {
      cx.problem(`duplicate cache path "${path}", "${other.name}" zone uses it already`, d, 'each zone needs its own directory');
      return;
    }
  }
  http.cacheZones.set(zone.name, {
    name: zone.name, path, levels, keysZoneSize: zone.size, inactive, maxSize, minFree, useTempPath, loc: locOf(d),
  });
}

function proxyCache(d: Directive, scope: Scope, cx: BuildContext): void {
  const v = d.args[0]!;
  if (v === 'off') {
    draftOf(scope).zone = null;
    return;
  }
  if (v.includes('$')) {
    cx.problem(`"${d.name}" with variables is not supported`, d, 'name one proxy_cache_path zone, or choose the location by the condition instead');
    return;
  }
  draftOf(scope).zone = v;
  const refs = zoneRefs.get(scope.http as HttpDraft) ?? [];
  refs.push({ name: v, at: locOf(d) });
  zoneRefs.set(scope.http as HttpDraft, refs);
}

/** Status codes nginx accepts in proxy_cache_valid (ngx_http_file_cache_valid_set_slot: 1..599). */
function validRule(d: Directive, scope: Scope, cx: BuildContext): void {
  const time = parseDuration(d.args[d.args.length - 1]!);
  if (time === null) {
    cx.problem(`invalid time value "${d.args[d.args.length - 1]!}"`, d, 'the last argument is a duration ("10m", "1h")');
    return;
  }
  const codesText = d.args.slice(0, -1);
  let rule: CacheValidRule;
  if (codesText.length === 0) {
    // nginx: TIME alone caches 200, 301 and 302.
    rule = { codes: [200, 301, 302], time };
  } else if (codesText.includes('any')) {
    rule = { codes: null, time };
  } else {
    const codes: number[] = [];
    for (const c of codesText) {
      const n = /^\d+$/.test(c) ? Number(c) : NaN;
      if (!(n >= 1 && n <= 599)) {
        cx.problem(`invalid status "${c}"`, d, 'a status code from 1 to 599, or any');
        return;
      }
      codes.push(n);
    }
    rule = { codes, time };
  }
  const draft = draftOf(scope);
  draft.valid = [...(draft.valid ?? []), rule];
}

function methods(d: Directive, scope: Scope, cx: BuildContext): void {
  const out = new Set(['GET', 'HEAD']);
  for (const m of d.args) {
    const upper = m.toUpperCase();
    if (!CACHE_METHODS.includes(upper)) {
      cx.problem(`invalid value "${m}"`, d, 'proxy_cache_methods takes GET, HEAD and POST');
      return;
    }
    out.add(upper);
  }
  draftOf(scope).methods = [...out];
}

/** `"proxy_cache" zone "x" is unknown` for a zone no proxy_cache_path defines (nginx checks at merge). */
export function checkCacheZones(http: HttpDraft, cx: BuildContext): void {
  for (const ref of zoneRefs.get(http) ?? []) {
    if (!http.cacheZones.has(ref.name)) cx.problem(`"proxy_cache" zone "${ref.name}" is unknown`, ref.at, 'define it with proxy_cache_path ... keys_zone=NAME:SIZE in http {}');
  }
}

/** The conditions proxy_cache_use_stale knows (ngx_http_upstream_cache_use_stale mask names). */
const STALE_CONDITIONS = ['error', 'timeout', 'invalid_header', 'updating', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404', 'http_429'];

function useStale(d: Directive, scope: Scope, cx: BuildContext): void {
  if (d.args.length === 1 && d.args[0] === 'off') {
    draftOf(scope).useStale = [];
    return;
  }
  const out: string[] = [];
  for (const a of d.args) {
    if (!STALE_CONDITIONS.includes(a)) {
      cx.problem(`invalid value "${a}"`, d, `proxy_cache_use_stale takes off or ${STALE_CONDITIONS.join(', ')}`);
      return;
    }
    out.push(a);
  }
  draftOf(scope).useStale = out;
}

function cacheFlag(name: string, key: 'lock' | 'revalidate' | 'convertHead' | 'backgroundUpdate'): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) draftOf(scope)[key] = v;
    },
  };
}

function cacheTime(name: string, key: 'lockTimeout' | 'lockAge'): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) draftOf(scope)[key] = v;
    },
  };
}

export const cacheDirectives: readonly DirectiveSpec[] = [
  { name: 'proxy_cache_path', contexts: ['http'], args: [2, Number.POSITIVE_INFINITY], repeatable: true, handle: cachePath },
  { name: 'proxy_cache', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: proxyCache },
  {
    name: 'proxy_cache_key', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.complex(d.args[0]!, d);
      if (v !== null) draftOf(scope).key = v;
    },
  },
  { name: 'proxy_cache_valid', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true, handle: validRule },
  { name: 'proxy_cache_methods', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, handle: methods },
  {
    name: 'proxy_cache_min_uses', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.number(d, d.args[0]!);
      if (v !== null) draftOf(scope).minUses = v;
    },
  },
  cacheFlag('proxy_cache_convert_head', 'convertHead'),
  cacheFlag('proxy_cache_lock', 'lock'),
  cacheFlag('proxy_cache_revalidate', 'revalidate'),
  cacheFlag('proxy_cache_background_update', 'backgroundUpdate'),
  cacheTime('proxy_cache_lock_timeout', 'lockTimeout'),
  cacheTime('proxy_cache_lock_age', 'lockAge'),
  { name: 'proxy_cache_use_stale', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, handle: useStale },
  {
    name: 'proxy_cache_max_range_offset', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      // nginx: an off_t (ngx_conf_set_off_slot), written like a size.
      const v = cx.size(d, d.args[0]!);
      if (v !== null) draftOf(scope).maxRangeOffset = v;
    },
  },
  condition('proxy_cache_bypass', 'bypass'),
  condition('proxy_no_cache', 'noCache'),
];
