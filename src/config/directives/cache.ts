/**
 * The proxy cache's request conditions, `proxy_cache_bypass` and `proxy_no_cache` (strings with
 * variables: a non-empty value other than "0" bypasses the cache / keeps the response out of it).
 * In nginx both only act on a location that caches (`proxy_cache`); configs set them in locations
 * that do not (a copied snippet, a cache turned off), where nginx checks them and they change
 * nothing. Sluice does not cache yet (`proxy_cache` is refused), so every location it accepts is
 * one that does not cache: the values are checked as nginx checks them (variables must exist)
 * and have nothing to act on, which is nginx's behaviour for such a location.
 */
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, type DirectiveSpec } from './table.js';

function condition(name: string): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true,
    handle(d, _scope, cx) {
      for (const a of d.args) cx.complex(a, d);
    },
  };
}

export const cacheDirectives: readonly DirectiveSpec[] = [
  condition('proxy_cache_bypass'),
  condition('proxy_no_cache'),
];
