/**
 * The static-file part of the control plane: defaults and nginx's merge of `root`/`alias`,
 * `index`, `try_files`, `autoindex*`, `types`, `etag`, `if_modified_since`, `max_ranges`,
 * `disable_symlinks`, `log_not_found` and `internal` (the directives are in directives/files.ts).
 */
import { constantValue } from './complex-value.js';
import type { AutoindexFormat, ComplexValue, DocumentRoot, FileSettings, SourceLoc, TryFilesConfig } from './types.js';

/** The settings written at one level; undefined means "not set here". */
export interface FilesDraft {
  root?: DocumentRoot & { readonly directive: 'root' | 'alias'; readonly at: SourceLoc };
  index?: ComplexValue[];
  tryFiles?: TryFilesConfig;
  autoindex?: boolean;
  autoindexExactSize?: boolean;
  autoindexFormat?: AutoindexFormat;
  autoindexLocaltime?: boolean;
  /** Extensions -> types of every `types {}` block of this level (nginx appends them). */
  types?: Map<string, string>;
  etag?: boolean;
  ifModifiedSince?: 'off' | 'exact' | 'before';
  maxRanges?: number;
  disableSymlinks?: { readonly mode: 'off' | 'on' | 'if_not_owner'; readonly from: ComplexValue | null };
  logNotFound?: boolean;
  internal?: boolean;
}

/**
 * nginx's types when no level has a `types` block (ngx_http_core_default_types): the real table
 * comes from `include mime.types;`, as in nginx's own nginx.conf.
 */
export const BUILTIN_TYPES: ReadonlyMap<string, string> = new Map([
  ['html', 'text/html'],
  ['gif', 'image/gif'],
  ['jpg', 'image/jpeg'],
]);

/**
 * A path as nginx's ngx_conf_full_name makes it: a relative one is appended to the prefix (as
 * text, without normalising: "../x" stays in the path).
 */
export function fullPath(raw: string, prefix: string): string {
  if (raw.startsWith('/')) return raw;
  return `${prefix.endsWith('/') ? prefix : `${prefix}/`}${raw}`;
}

/** nginx's default root: "html" in the prefix. */
export function defaultRoot(prefix: string): DocumentRoot {
  return { path: constantValue(fullPath('html', prefix)), alias: null, prefix };
}

export function fileDefaults(prefix: string): FileSettings {
  return {
    root: defaultRoot(prefix),
    index: [constantValue('index.html')],
    tryFiles: null,
    autoindex: false,
    autoindexExactSize: true,
    autoindexFormat: 'html',
    autoindexLocaltime: false,
    types: BUILTIN_TYPES,
    etag: true,
    ifModifiedSince: 'exact',
    maxRanges: null,
    disableSymlinks: 'off',
    symlinksFrom: null,
    logNotFound: true,
    internal: false,
  };
}

/** nginx's merge: each value written here wins; `try_files` is never inherited (the module has no merge). */
export function mergeFiles(parent: FileSettings, d: FilesDraft | undefined): FileSettings {
  if (d === undefined) return parent.tryFiles === null ? parent : { ...parent, tryFiles: null };
  return {
    root: d.root === undefined ? parent.root : { path: d.root.path, alias: d.root.alias, prefix: d.root.prefix },
    index: d.index ?? parent.index,
    tryFiles: d.tryFiles ?? null,
    autoindex: d.autoindex ?? parent.autoindex,
    autoindexExactSize: d.autoindexExactSize ?? parent.autoindexExactSize,
    autoindexFormat: d.autoindexFormat ?? parent.autoindexFormat,
    autoindexLocaltime: d.autoindexLocaltime ?? parent.autoindexLocaltime,
    types: d.types ?? parent.types,
    etag: d.etag ?? parent.etag,
    ifModifiedSince: d.ifModifiedSince ?? parent.ifModifiedSince,
    maxRanges: d.maxRanges ?? parent.maxRanges,
    disableSymlinks: d.disableSymlinks?.mode ?? parent.disableSymlinks,
    symlinksFrom: d.disableSymlinks === undefined ? parent.symlinksFrom : d.disableSymlinks.from,
    logNotFound: d.logNotFound ?? parent.logNotFound,
    internal: d.internal ?? parent.internal,
  };
}
