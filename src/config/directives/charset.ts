/**
 * ngx_http_charset_module, the part configs use: `charset` names the charset in Content-Type
 * (`text/html; charset=utf-8`) for the types of `charset_types`; `source_charset` and
 * `override_charset` are accepted only where they ask for no recoding (Sluice does not recode
 * bodies between charsets), and `charset_map` is refused with that reason.
 */
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

export const charsetDirectives: readonly DirectiveSpec[] = [
  {
    name: 'charset', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope) {
      const v = d.args[0]!;
      settingsOf(scope).charset = v === 'off' ? null : v;
    },
  },
  {
    name: 'charset_types', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE,
    handle(d, scope) {
      settingsOf(scope).charsetTypes = d.args.map((t) => t.toLowerCase());
    },
  },
  {
    name: 'source_charset', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const charset = settingsOf(scope).charset;
      // Recoding only happens when the two differ; a source equal to the charset is a no-op.
      if (charset === undefined || charset === null || charset.toLowerCase() !== d.args[0]!.toLowerCase()) {
        cx.problem('"source_charset" other than "charset" is not supported', d, 'Sluice does not recode bodies between charsets; remove it, or write it after a "charset" of the same value');
      }
    },
  },
  {
    name: 'override_charset', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, _scope, cx) {
      if (parseFlag(d, cx) === true) cx.problem('"override_charset on" is not supported', d, 'Sluice does not recode upstream bodies between charsets');
    },
  },
];
