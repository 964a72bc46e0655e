/**
 * Static files: the directives of ngx_http_core_module that serve them (`root`, `alias`, `types`,
 * `etag`, `if_modified_since`, `max_ranges`, `disable_symlinks`, `log_not_found`, `internal`,
 * and those accepted for their I/O meaning only: `sendfile`, `tcp_nopush`, `open_file_cache`...),
 * ngx_http_index_module (`index`), ngx_http_try_files_module (`try_files`) and
 * ngx_http_autoindex_module. Messages are nginx's; docs/configuration.md says what each does here.
 */
import type { BuildContext } from '../build-context.js';
import type { FilesDraft } from '../files.js';
import { fullPath } from '../files.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { ComplexValue, TryFilesConfig } from '../types.js';
import { parseDuration, parseSize } from '../units.js';
import {
  HTTP_SERVER_LOCATION, NOARGS, ONE_OR_MORE, TAKE1, TAKE12, TAKE2, TWO_OR_MORE, parseEnum, parseFlag, settingsOf,
  type DirectiveSpec,
} from './table.js';

function filesOf(scope: Scope): FilesDraft {
  return settingsOf(scope).files ??= {};
}

type FileKeys<V> = { [K in keyof FilesDraft]-?: NonNullable<FilesDraft[K]> extends V ? (V extends NonNullable<FilesDraft[K]> ? K : never) : never }[keyof FilesDraft];

function flag(name: string, key: FileKeys<boolean>): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) filesOf(scope)[key] = v;
    },
  };
}

/**
 * A directive Sluice accepts for configs written for nginx, where it changes how nginx does I/O
 * rather than what it answers (docs/configuration.md says what each means here): its arguments
 * are checked as nginx checks them, and nothing is recorded.
 */
function accepted(name: string, args: typeof TAKE1, check: (d: Directive, cx: BuildContext) => void): DirectiveSpec {
  return { name, contexts: HTTP_SERVER_LOCATION, args, handle: (d, _scope, cx) => check(d, cx) };
}

function isFlag(d: Directive, cx: BuildContext): void {
  parseFlag(d, cx);
}

function isSize(d: Directive, cx: BuildContext): void {
  if (parseSize(d.args[0]!) === null) cx.problem(`"${d.name}" directive invalid value`, d, `"${d.args[0]!}" is not a size ("512", "32k", "1m")`);
}

function isNumber(d: Directive, cx: BuildContext): void {
  cx.number(d, d.args[0]!);
}

/**
 * A path argument: a relative one is made absolute against the prefix where it is written, unless
 * it starts with a variable (nginx makes that one absolute when the request evaluates it).
 */
function pathValue(raw: string, d: Directive, cx: BuildContext): ComplexValue | null {
  const value = cx.complex(raw, d);
  if (value === null || raw.startsWith('/') || raw.startsWith('$')) return value;
  const base = fullPath('', cx.prefix);
  return { raw: fullPath(raw, cx.prefix), parts: [{ text: base }, ...value.parts], constant: value.constant === null ? null : base + value.constant };
}

/** `root PATH;` and `alias PATH;` (ngx_http_core_root): one of them per level. */
function rootOrAlias(d: Directive, scope: Scope, cx: BuildContext): void {
  const alias = d.name === 'alias';
  const files = filesOf(scope);
  if (files.root !== undefined) {
    if (files.root.directive === d.name) return cx.problem(`"${d.name}" directive is duplicate`, d);
    return cx.problem(`"${d.name}" directive is duplicate, "${files.root.directive}" directive was specified earlier`, d);
  }
  const location = scope.context === 'location' ? scope.location : null;
  if (alias && location?.modifier === '@') {
    return cx.problem('the "alias" directive cannot be used inside the named location', d);
  }
  let raw = d.args[0]!;
  for (const v of ['document_root', 'realpath_root']) {
    if (raw.includes(`$${v}`) || raw.includes(`\${${v}}`)) {
      return cx.problem(`the $${v} variable cannot be used in the "${d.name}" directive`, d);
    }
  }
  // nginx drops one trailing slash of a root ("root /srv/www/;" serves /srv/www/x for "/x"), never of an alias.
  if (!alias && raw.length > 1 && raw.endsWith('/')) raw = raw.slice(0, -1);
  const path = pathValue(raw, d, cx);
  if (path === null) return;
  let kind: number | 'regex' | null = null;
  if (alias) kind = location!.modifier === '~' || location!.modifier === '~*' ? 'regex' : location!.pattern.length;
  files.root = { path, alias: kind, prefix: cx.prefix, directive: alias ? 'alias' : 'root', at: { file: d.file, line: d.line } };
}

/** `index FILE ...;` (ngx_http_index_set_index): repeated lines add to the list. */
function index(d: Directive, scope: Scope, cx: BuildContext): void {
  const list: ComplexValue[] = [];
  for (let i = 0; i < d.args.length; i++) {
    const name = d.args[i]!;
    if (name.startsWith('/') && i !== d.args.length - 1) {
      cx.warn('only the last index in "index" directive should be absolute', d);
    }
    if (name === '') return cx.problem(`index "${name}" in "index" directive is invalid`, d);
    const value = cx.complex(name, d);
    if (value === null) return;
    list.push(value);
  }
  (filesOf(scope).index ??= []).push(...list);
}

/** `try_files FILE ... URI|=CODE|@NAME;` (ngx_http_try_files). */
function tryFiles(d: Directive, scope: Scope, cx: BuildContext): void {
  const tries: { value: ComplexValue; dir: boolean }[] = [];
  const n = d.args.length;
  for (let i = 0; i < n - 1; i++) {
    let name = d.args[i]!;
    // A trailing slash asks for a directory; nginx tests it without the slash.
    const dir = name.length > 0 && name.endsWith('/');
    if (dir) name = name.slice(0, -1);
    const value = cx.complex(name, d);
    if (value === null) return;
    tries.push({ value, dir });
  }
  const last = d.args[n - 1]!;
  let fallback: TryFilesConfig['fallback'];
  if (last.startsWith('=')) {
    const code = /^[0-9]+$/.test(last.slice(1)) ? Number(last.slice(1)) : NaN;
    if (!(code <= 999)) return cx.problem(`invalid code "${last}"`, d, 'the last parameter "=CODE" is a status such as =404');
    fallback = { code };
  } else {
    const uri = cx.complex(last, d);
    if (uri === null) return;
    fallback = { uri };
  }
  filesOf(scope).tryFiles = { tries, fallback };
}

/** `types { TYPE EXTENSION ...; }` (ngx_http_core_type): blocks of one level add to one table. */
function types(d: Directive, scope: Scope, cx: BuildContext): void {
  const files = filesOf(scope);
  const table = files.types ??= new Map();
  for (const e of d.block ?? []) {
    if (e.block !== null) {
      cx.problem('unexpected "{"', e);
      continue;
    }
    for (const arg of e.args) {
      const ext = arg.toLowerCase();
      const previous = table.get(ext);
      if (previous !== undefined) {
        cx.warn(`duplicate extension "${arg}", content type: "${e.name}", previous content type: "${previous}"`, e);
      }
      table.set(ext, e.name);
    }
  }
}

/** `disable_symlinks off | on | if_not_owner [from=PART];` (ngx_http_disable_symlinks). */
function disableSymlinks(d: Directive, scope: Scope, cx: BuildContext): void {
  let mode: 'off' | 'on' | 'if_not_owner' | null = null;
  let from: ComplexValue | null = null;
  let fromSeen = false;
  for (const arg of d.args) {
    if (arg === 'off' || arg === 'on' || arg === 'if_not_owner') {
      if (mode !== null) return cx.problem(`duplicate parameters "${d.args[0]!} ${d.args[1]!}"`, d);
      mode = arg;
      continue;
    }
    if (arg.startsWith('from=')) {
      if (fromSeen) return cx.problem(`duplicate parameters "${d.args[0]!} ${d.args[1]!}"`, d);
      fromSeen = true;
      const value = cx.complex(arg.slice(5), d);
      if (value === null) return;
      from = value;
      continue;
    }
    return cx.problem(`invalid parameter "${arg}"`, d);
  }
  if (mode === null) return cx.problem(`"${d.name}" must have "off", "on" or "if_not_owner" parameter`, d);
  if (mode === 'off' && fromSeen) return cx.problem('"from=" cannot be used with "off" parameter', d);
  filesOf(scope).disableSymlinks = { mode, from };
}

/** `open_file_cache max=N [inactive=TIME] | off;`: checked as nginx does (ngx_http_core_open_file_cache). */
function openFileCache(d: Directive, cx: BuildContext): void {
  let max = 0;
  let off = false;
  for (const arg of d.args) {
    let ok = false;
    if (arg.startsWith('max=')) {
      max = /^[0-9]+$/.test(arg.slice(4)) ? Number(arg.slice(4)) : 0;
      ok = max > 0;
    } else if (arg.startsWith('inactive=')) {
      ok = parseDuration(arg.slice(9), true) !== null;
    } else if (arg === 'off') {
      off = true;
      ok = true;
    }
    if (!ok) return cx.problem(`invalid "open_file_cache" parameter "${arg}"`, d);
  }
  if (!off && max === 0) cx.problem('"open_file_cache" must have the "max" parameter', d);
}

/** `aio off | on | threads[=POOL];`: accepted everywhere (Node reads files on its thread pool). */
function aio(d: Directive, cx: BuildContext): void {
  const v = d.args[0]!;
  if (v === 'off' || v === 'on' || v === 'threads' || v.startsWith('threads=')) return;
  cx.problem(`"${d.name}" directive invalid value`, d, 'aio takes "off", "on" or "threads[=POOL]"');
}

export const filesDirectives: readonly DirectiveSpec[] = [
  { name: 'root', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: rootOrAlias },
  { name: 'alias', contexts: ['location'], args: TAKE1, handle: rootOrAlias },
  { name: 'index', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true, handle: index },
  { name: 'try_files', contexts: ['server', 'location'], args: TWO_OR_MORE, handle: tryFiles },
  flag('autoindex', 'autoindex'),
  flag('autoindex_exact_size', 'autoindexExactSize'),
  flag('autoindex_localtime', 'autoindexLocaltime'),
  {
    name: 'autoindex_format', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseEnum(d, d.args[0]!.toLowerCase(), ['html', 'json', 'jsonp', 'xml'] as const, cx);
      if (v !== null) filesOf(scope).autoindexFormat = v;
    },
  },
  { name: 'types', contexts: HTTP_SERVER_LOCATION, args: NOARGS, block: 'own', repeatable: true, handle: types },
  flag('etag', 'etag'),
  {
    name: 'if_modified_since', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseEnum(d, d.args[0]!.toLowerCase(), ['off', 'exact', 'before'] as const, cx);
      if (v !== null) filesOf(scope).ifModifiedSince = v;
    },
  },
  {
    name: 'max_ranges', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.number(d, d.args[0]!);
      if (v !== null) filesOf(scope).maxRanges = v;
    },
  },
  { name: 'disable_symlinks', contexts: HTTP_SERVER_LOCATION, args: TAKE12, handle: disableSymlinks },
  flag('log_not_found', 'logNotFound'),
  {
    name: 'internal', contexts: ['location'], args: NOARGS,
    handle(_d, scope) {
      filesOf(scope).internal = true;
    },
  },
  accepted('types_hash_max_size', TAKE1, isNumber),
  accepted('types_hash_bucket_size', TAKE1, isNumber),
  accepted('open_file_cache', TAKE12, openFileCache),
  accepted('open_file_cache_valid', TAKE1, (d, cx) => void cx.duration(d, d.args[0]!)),
  accepted('open_file_cache_min_uses', TAKE1, isNumber),
  accepted('open_file_cache_errors', TAKE1, isFlag),
  accepted('open_file_cache_events', TAKE1, isFlag),
  accepted('sendfile', TAKE1, isFlag),
  accepted('sendfile_max_chunk', TAKE1, isSize),
  accepted('tcp_nopush', TAKE1, isFlag),
  accepted('tcp_nodelay', TAKE1, isFlag),
  accepted('directio', TAKE1, (d, cx) => {
    if (d.args[0] !== 'off') isSize(d, cx);
  }),
  accepted('directio_alignment', TAKE1, isSize),
  accepted('aio', TAKE1, aio),
  accepted('aio_write', TAKE1, isFlag),
  accepted('read_ahead', TAKE1, isSize),
  accepted('postpone_output', TAKE1, isSize),
  accepted('output_buffers', TAKE2, (d, cx) => {
    if (cx.number(d, d.args[0]!) !== null && parseSize(d.args[1]!) === null) {
      cx.problem(`"${d.name}" directive invalid value`, d, 'output_buffers takes NUMBER SIZE, e.g. "2 32k"');
    }
  }),
];
