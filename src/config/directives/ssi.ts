/**
 * Server-side includes: ngx_http_ssi_module's directives (`ssi`, `ssi_types`,
 * `ssi_silent_errors`, `ssi_value_length`, `ssi_min_file_chunk`, `ssi_last_modified`), with
 * nginx 1.22's defaults (ngx_http_ssi_merge_loc_conf) and messages. The filter itself is
 * src/proxy/filters/ssi/.
 */
import type { BuildContext } from '../build-context.js';
import type { Scope, SettingsDraft } from '../draft.js';
import type { Directive } from '../parser.js';
import type { SsiSettings } from '../types.js';
import { addMimeTypes } from './gzip.js';
import { parseSize } from '../units.js';
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

/** nginx's ngx_http_html_default_types: every `ssi_types` list starts with it. */
const HTML = 'text/html';

/** nginx's defaults: off, text/html, no silent errors, 255-byte values, 1k file chunks, Last-Modified cleared. */
export function ssiDefaults(): SsiSettings {
  return { enabled: false, types: new Set([HTML]), silentErrors: false, valueLength: 255, minFileChunk: 1024, lastModified: false };
}

/** Each directive is inherited on its own. */
export function mergeSsi(parent: SsiSettings, own: SettingsDraft['ssi']): SsiSettings {
  return own === undefined ? parent : { ...parent, ...own };
}

type Draft = NonNullable<SettingsDraft['ssi']>;

function draft(scope: Scope): Draft {
  return (settingsOf(scope).ssi ??= {});
}

function flagHandler(key: 'enabled' | 'silentErrors' | 'lastModified') {
  return (d: Directive, scope: Scope, cx: BuildContext): void => {
    const v = parseFlag(d, cx);
    if (v !== null) draft(scope)[key] = v;
  };
}

/** ngx_conf_set_size_slot: `"name" directive invalid value`. */
function sizeHandler(key: 'valueLength' | 'minFileChunk') {
  return (d: Directive, scope: Scope, cx: BuildContext): void => {
    const v = parseSize(d.args[0]!);
    if (v === null) cx.problem(`"${d.name}" directive invalid value`, d, `"${d.args[0]!}" is not a size ("256", "1k")`);
    else draft(scope)[key] = v;
  };
}

/** ngx_http_types_slot, as gzip_types: lines of one level add up from text/html; `*` is any type. */
function typesHandler(d: Directive, scope: Scope, cx: BuildContext): void {
  const c = draft(scope);
  c.types = addMimeTypes(d, c.types, cx);
}

export const ssiDirectives: readonly DirectiveSpec[] = [
  { name: 'ssi', contexts: [...HTTP_SERVER_LOCATION, 'lif'], args: TAKE1, handle: flagHandler('enabled') },
  { name: 'ssi_types', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true, handle: typesHandler },
  { name: 'ssi_silent_errors', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: flagHandler('silentErrors') },
  { name: 'ssi_value_length', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: sizeHandler('valueLength') },
  { name: 'ssi_min_file_chunk', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: sizeHandler('minFileChunk') },
  { name: 'ssi_last_modified', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: flagHandler('lastModified') },
];
