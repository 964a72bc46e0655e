/**
 * `proxy_cookie_domain`, `proxy_cookie_path` and `proxy_cookie_flags` (ngx_http_proxy_module,
 * flags since nginx 1.19.3): the rules that edit the Set-Cookie headers of proxied responses
 * (src/proxy/headers/cookie-rewrite.ts applies them). Each takes `off` or rules; the rules of one
 * level form one list, and a level without any line inherits its parent's (nginx's pointer merge).
 */
import type { BuildContext } from '../build-context.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { ComplexValue, CookieFlagsRule, CookieRewrite } from '../types.js';
import { HTTP_SERVER_LOCATION, TAKE12, settingsOf, type Arity, type DirectiveSpec } from './table.js';

const TAKE1234: Arity = [1, 4];

type CookieKey = 'proxyCookieDomain' | 'proxyCookiePath' | 'proxyCookieFlags';

/**
 * nginx's shared start of the three handlers: `off` alone, only on a level without rules (and
 * once), or else one more rule. Returns false when the line is done (recorded or reported).
 */
function startRule(d: Directive, scope: Scope, cx: BuildContext, key: CookieKey, hint: string): boolean {
  const settings = settingsOf(scope);
  const prev = settings[key];
  if (prev === null) {
    cx.problem(`"${d.name}" directive is duplicate`, d, `"${d.name} off" turns every rule of this level off; remove it or the rules`);
    return false;
  }
  if (d.args.length > 1) return true;
  if (d.args[0] !== 'off') {
    cx.problem(`invalid parameter "${d.args[0]!}"`, d, hint);
  } else if (prev !== undefined) {
    cx.problem(`"${d.name}" directive is duplicate`, d, `"${d.name} off" turns every rule of this level off; remove it or the rules`);
  } else {
    settings[key] = null;
  }
  return false;
}

/** A pattern argument: `~REGEX` (caseless as given) or a value that may hold variables. */
function pattern(text: string, caseless: boolean, d: Directive, cx: BuildContext): ComplexValue | RegExp | null {
  return text.startsWith('~') ? cx.regex(text.slice(1), caseless, d) : cx.complex(text, d);
}

function cookieDomain(d: Directive, scope: Scope, cx: BuildContext): void {
  if (!startRule(d, scope, cx, 'proxyCookieDomain', 'use "proxy_cookie_domain off" or "proxy_cookie_domain DOMAIN REPLACEMENT"')) return;
  let [fromText, toText] = d.args as [string, string];
  // nginx: a domain regex is always caseless; a literal domain and its replacement lose a leading
  // dot (the cookie's own dot is kept when it is rewritten).
  if (!fromText.startsWith('~')) {
    if (fromText.startsWith('.')) fromText = fromText.slice(1);
    if (toText.startsWith('.')) toText = toText.slice(1);
  }
  const from = pattern(fromText, true, d, cx);
  const to = cx.complex(toText, d);
  if (from !== null && to !== null) pushRule(scope, 'proxyCookieDomain', { from, to });
}

function cookiePath(d: Directive, scope: Scope, cx: BuildContext): void {
  if (!startRule(d, scope, cx, 'proxyCookiePath', 'use "proxy_cookie_path off" or "proxy_cookie_path PATH REPLACEMENT"')) return;
  const [fromText, toText] = d.args as [string, string];
  const from = fromText.startsWith('~*') ? cx.regex(fromText.slice(2), true, d) : pattern(fromText, false, d, cx);
  const to = cx.complex(toText, d);
  if (from !== null && to !== null) pushRule(scope, 'proxyCookiePath', { from, to });
}

function pushRule(scope: Scope, key: 'proxyCookieDomain' | 'proxyCookiePath', rule: CookieRewrite): void {
  const settings = settingsOf(scope);
  (settings[key] ??= []).push(rule);
}

/**
 * The flags are values evaluated per response, as nginx does: one that names no flag is skipped
 * then (nginx logs it at debug level only), so `-t` does not check them either.
 */
function cookieFlags(d: Directive, scope: Scope, cx: BuildContext): void {
  if (!startRule(d, scope, cx, 'proxyCookieFlags', 'use "proxy_cookie_flags off" or "proxy_cookie_flags COOKIE FLAG..." with secure, httponly, samesite=strict|lax|none or their no... forms')) return;
  const cookie = pattern(d.args[0]!, true, d, cx);
  const flags: ComplexValue[] = [];
  for (const text of d.args.slice(1)) {
    const v = cx.complex(text, d);
    if (v === null) return;
    flags.push(v);
  }
  if (cookie === null) return;
  const rule: CookieFlagsRule = { cookie, flags };
  (settingsOf(scope).proxyCookieFlags ??= []).push(rule);
}

export const proxyCookieDirectives: readonly DirectiveSpec[] = [
  { name: 'proxy_cookie_domain', contexts: HTTP_SERVER_LOCATION, args: TAKE12, repeatable: true, handle: cookieDomain },
  { name: 'proxy_cookie_path', contexts: HTTP_SERVER_LOCATION, args: TAKE12, repeatable: true, handle: cookiePath },
  { name: 'proxy_cookie_flags', contexts: HTTP_SERVER_LOCATION, args: TAKE1234, repeatable: true, handle: cookieFlags },
];
