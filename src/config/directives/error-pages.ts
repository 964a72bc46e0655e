/**
 * ngx_http_core_module's `error_page` and `recursive_error_pages`, and the proxy module's
 * `proxy_intercept_errors` that hands upstream answers to them. What they do at request time is
 * proxy/session/error-pages.ts.
 */
import type { ErrorPage } from '../types.js';
import { coreOf } from './http-flags.js';
import { HTTP_SERVER_LOCATION, TAKE1, TWO_OR_MORE, parseFlag, type DirectiveSpec } from './table.js';

/** nginx's ngx_atoi: decimal digits only, nothing else (not even a sign). */
function atoi(text: string): number | null {
  return /^[0-9]+$/.test(text) ? Number(text) : null;
}

/** nginx 1.22 sends 494, 495, 496 and 497 as 400 unless the line says otherwise (ngx_http_core_error_page). */
const SENT_AS_400 = new Set([494, 495, 496, 497]);

function flag(name: string, key: 'recursiveErrorPages' | 'proxyInterceptErrors'): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) coreOf(scope)[key] = v;
    },
  };
}

export const errorPageDirectives: readonly DirectiveSpec[] = [
  {
    // error_page CODE ... [=[RESPONSE]] URI; the lines of one level add up.
    name: 'error_page', contexts: HTTP_SERVER_LOCATION, args: TWO_OR_MORE, repeatable: true,
    handle(d, scope, cx) {
      const args = d.args;
      const last = args[args.length - 1]!;
      const maybe = args[args.length - 2]!;
      let overwrite = -1;
      let codes = args.slice(0, -1);
      if (maybe.startsWith('=')) {
        if (args.length === 2) {
          cx.problem(`invalid value "${maybe}"`, d, 'name at least one status before "=": error_page 404 =200 /404.html');
          return;
        }
        if (maybe.length > 1) {
          const n = atoi(maybe.slice(1));
          if (n === null) {
            cx.problem(`invalid value "${maybe}"`, d, 'write "=" alone (the page\'s own status) or "=CODE"');
            return;
          }
          overwrite = n;
        } else {
          overwrite = 0;
        }
        codes = args.slice(0, -2);
      }
      const target = cx.complex(last, d);
      if (target === null) return;
      let value = target;
      let query: string | null = null;
      // nginx splits `?args` off a URI written without variables once, here; with variables it
      // splits the evaluated value at request time.
      const q = last.indexOf('?');
      if (target.constant !== null && last.startsWith('/') && q >= 0) {
        value = { raw: last.slice(0, q), parts: [{ text: last.slice(0, q) }], constant: last.slice(0, q) };
        query = last.slice(q + 1);
      }
      const pages: ErrorPage[] = [];
      for (const code of codes) {
        const status = atoi(code);
        if (status === null || status === 499) {
          cx.problem(`invalid value "${code}"`, d, 'an error_page status is a number from 300 to 599 (not 499)');
          return;
        }
        if (status < 300 || status > 599) {
          cx.problem(`value "${code}" must be between 300 and 599`, d);
          return;
        }
        pages.push({ status, overwrite: overwrite === -1 && SENT_AS_400.has(status) ? 400 : overwrite, target: value, args: query });
      }
      const core = coreOf(scope);
      // Lines of this level add up; the inherited list is replaced, not extended.
      core.errorPages = [...(core.errorPages ?? []), ...pages];
    },
  },
  flag('recursive_error_pages', 'recursiveErrorPages'),
  flag('proxy_intercept_errors', 'proxyInterceptErrors'),
];
