/**
 * Response compression: ngx_http_gzip_module (`gzip`, `gzip_types`, `gzip_min_length`,
 * `gzip_comp_level`, `gzip_buffers`), the gzip directives of ngx_http_core_module (`gzip_proxied`,
 * `gzip_vary`, `gzip_disable`, `gzip_http_version`), ngx_http_gzip_static_module (`gzip_static`)
 * and, as a documented extension, ngx_brotli's names (`brotli`, `brotli_types`,
 * `brotli_comp_level`, `brotli_min_length`, `brotli_static`). Messages are nginx 1.22's.
 */
import type { BuildContext } from '../build-context.js';
import type { Scope, SettingsDraft } from '../draft.js';
import type { Directive } from '../parser.js';
import type { CompressionSettings, GzipProxiedFlag, MimeTypes, PrecompressedMode } from '../types.js';
import { parseNumber, parseSize } from '../units.js';
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, TAKE2, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

/** nginx's ngx_http_html_default_types: the type every `*_types` list starts with. */
const HTML = 'text/html';

/**
 * nginx's defaults (ngx_http_gzip_merge_conf, ngx_http_core_merge_loc_conf,
 * ngx_http_brotli_merge_conf). gzip_buffers is `(128k / pagesize) x pagesize`: 32 4k on Linux.
 * A new object per load: the config's deep freeze replaces the Sets inside it.
 */
export function compressionDefaults(): CompressionSettings {
  return {
    gzip: false,
    gzipTypes: new Set([HTML]),
    gzipMinLength: 20,
    gzipCompLevel: 1,
    gzipProxied: new Set<GzipProxiedFlag>(['off']),
    gzipVary: false,
    gzipDisable: [],
    gzipDisableMsie6: false,
    gzipHttpVersion: '1.1',
    gzipBuffers: { number: 32, size: 4096 },
    gzipStatic: 'off',
    brotli: false,
    brotliTypes: new Set([HTML]),
    brotliCompLevel: 6,
    brotliMinLength: 20,
    brotliStatic: 'off',
  };
}

/** nginx merges each directive on its own: a value written at a level wins, else the parent's. */
export function mergeCompression(parent: CompressionSettings, own: SettingsDraft['compression']): CompressionSettings {
  // Handlers only ever store valid values, so every key `own` has is one written at this level.
  return own === undefined ? parent : { ...parent, ...own };
}

type Draft = NonNullable<SettingsDraft['compression']>;

function draft(scope: Scope): Draft {
  return (settingsOf(scope).compression ??= {});
}

const PROXIED_FLAGS: readonly GzipProxiedFlag[] = ['off', 'expired', 'no-cache', 'no-store', 'private', 'no_last_modified', 'no_etag', 'auth', 'any'];
const PRECOMPRESSED_MODES: readonly PrecompressedMode[] = ['off', 'on', 'always'];

/** nginx's enum slot: `invalid value "x"`. */
function enumArg<T extends string>(d: Directive, allowed: readonly T[], cx: BuildContext): T | null {
  const v = d.args[0]!;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  cx.problem(`invalid value "${v}"`, d, `"${d.name}" takes ${allowed.map((a) => `"${a}"`).join(', ')}`);
  return null;
}

/**
 * ngx_http_types_slot: the lines of one level add up, starting from text/html (so writing
 * text/html again is nginx's "duplicate MIME type" warning); `*` means any type. A level with a
 * line of its own does not inherit its parent's list. Returns the level's list after line `d`.
 */
export function addMimeTypes(d: Directive, current: MimeTypes | undefined, cx: BuildContext): MimeTypes {
  const list: MimeTypes = current ?? new Set([HTML]);
  if (list === '*') return list;
  const types = list as Set<string>;
  for (const arg of d.args) {
    if (arg === '*') return '*';
    const type = arg.toLowerCase();
    if (types.has(type)) cx.warn(`duplicate MIME type "${arg}"`, d);
    else types.add(type);
  }
  return types;
}

function typesHandler(key: 'gzipTypes' | 'brotliTypes') {
  return (d: Directive, scope: Scope, cx: BuildContext): void => {
    const c = draft(scope);
    c[key] = addMimeTypes(d, c[key], cx);
  };
}

/** ngx_conf_set_size_slot: `"name" directive invalid value`. */
function sizeHandler(key: 'gzipMinLength' | 'brotliMinLength') {
  return (d: Directive, scope: Scope, cx: BuildContext): void => {
    const v = parseSize(d.args[0]!);
    if (v === null) cx.problem(`"${d.name}" directive invalid value`, d, `"${d.args[0]!}" is not a size ("20", "1k", "1m")`);
    else draft(scope)[key] = v;
  };
}

/** ngx_conf_set_num_slot with ngx_conf_check_num_bounds. */
function levelHandler(key: 'gzipCompLevel' | 'brotliCompLevel', min: number, max: number) {
  return (d: Directive, scope: Scope, cx: BuildContext): void => {
    const v = parseNumber(d.args[0]!);
    if (v === null) cx.problem(`"${d.name}" directive invalid number`, d, `a whole number from ${min} to ${max}`);
    else if (v < min || v > max) cx.problem(`value must be between ${min} and ${max}`, d, `"${d.name}" takes ${min} (fastest) to ${max} (smallest)`);
    else draft(scope)[key] = v;
  };
}

function flagHandler(key: 'gzip' | 'gzipVary' | 'brotli') {
  return (d: Directive, scope: Scope, cx: BuildContext): void => {
    const v = parseFlag(d, cx);
    if (v !== null) draft(scope)[key] = v;
  };
}

function staticHandler(key: 'gzipStatic' | 'brotliStatic') {
  return (d: Directive, scope: Scope, cx: BuildContext): void => {
    const v = enumArg(d, PRECOMPRESSED_MODES, cx);
    if (v !== null) draft(scope)[key] = v;
  };
}

export const gzipDirectives: readonly DirectiveSpec[] = [
  { name: 'gzip', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: flagHandler('gzip') },
  { name: 'gzip_types', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true, handle: typesHandler('gzipTypes') },
  { name: 'gzip_min_length', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: sizeHandler('gzipMinLength') },
  { name: 'gzip_comp_level', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: levelHandler('gzipCompLevel', 1, 9) },
  {
    // ngx_conf_set_bitmask_slot: unknown flags are errors, repeated ones a warning.
    name: 'gzip_proxied', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const flags = new Set<GzipProxiedFlag>();
      for (const arg of d.args) {
        if (!(PROXIED_FLAGS as readonly string[]).includes(arg)) {
          cx.problem(`invalid value "${arg}"`, d, `"gzip_proxied" takes ${PROXIED_FLAGS.join(', ')}`);
          return;
        }
        if (flags.has(arg as GzipProxiedFlag)) cx.warn(`duplicate value "${arg}"`, d);
        flags.add(arg as GzipProxiedFlag);
      }
      draft(scope).gzipProxied = flags;
    },
  },
  { name: 'gzip_vary', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: flagHandler('gzipVary') },
  {
    // ngx_http_gzip_disable: regexes are caseless; `msie6` is a flag of its own, merged on its
    // own, while any line at a level (even `msie6` alone) replaces the inherited regexes.
    name: 'gzip_disable', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true,
    handle(d, scope, cx) {
      const c = draft(scope);
      const regexes = (c.gzipDisable ??= []) as RegExp[];
      for (const arg of d.args) {
        if (arg === 'msie6') {
          c.gzipDisableMsie6 = true;
          continue;
        }
        const re = cx.regex(arg, true, d);
        if (re !== null) regexes.push(re);
      }
    },
  },
  {
    name: 'gzip_http_version', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = enumArg(d, ['1.0', '1.1'] as const, cx);
      if (v !== null) draft(scope).gzipHttpVersion = v;
    },
  },
  {
    // ngx_conf_set_bufs_slot: a positive number and a positive size.
    name: 'gzip_buffers', contexts: HTTP_SERVER_LOCATION, args: TAKE2,
    handle(d, scope, cx) {
      const number = parseNumber(d.args[0]!);
      const size = parseSize(d.args[1]!);
      if (number === null || number === 0 || size === null || size === 0) {
        cx.problem(`"${d.name}" directive invalid value`, d, 'gzip_buffers takes a number and a size, both above 0 ("16 8k")');
        return;
      }
      draft(scope).gzipBuffers = { number, size };
    },
  },
  { name: 'gzip_static', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: staticHandler('gzipStatic') },
  { name: 'brotli', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: flagHandler('brotli') },
  { name: 'brotli_types', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true, handle: typesHandler('brotliTypes') },
  { name: 'brotli_comp_level', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: levelHandler('brotliCompLevel', 0, 11) },
  { name: 'brotli_min_length', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: sizeHandler('brotliMinLength') },
  { name: 'brotli_static', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: staticHandler('brotliStatic') },
];
