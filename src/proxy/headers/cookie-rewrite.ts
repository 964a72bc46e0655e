/**
 * `proxy_cookie_domain`, `proxy_cookie_path` and `proxy_cookie_flags` applied to one Set-Cookie
 * value of a proxied response, as nginx's ngx_http_proxy_rewrite_cookie does (1.19.3 and later):
 * the value is split into `name=value` and its attributes; the Domain and Path attributes go
 * through the first rule that matches them, and the first `proxy_cookie_flags` line naming the
 * cookie adds, removes or changes Secure, HttpOnly and SameSite. A value no rule changed goes out
 * byte for byte; a changed one is written back with "; " between its attributes.
 */
import type { ComplexValue, CookieFlagsRule, CookieRewrite, Settings } from '../../config/types.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';
import { sendableHeaderValue } from './header-value.js';

/** One `key[=value]` part; a null key is an attribute the flags removed, a null value has no `=`. */
interface CookieAttr {
  key: string | null;
  value: string | null;
}

/** True when any cookie rule applies at this level (the relay's cheap test before parsing). */
export function rewritesCookies(settings: Settings): boolean {
  return settings.proxyCookieDomain.length > 0 || settings.proxyCookiePath.length > 0 || settings.proxyCookieFlags.length > 0;
}

/** ngx_http_proxy_parse_cookie: split at each ';', spaces (only spaces) trimmed around names and values. */
function parseCookie(header: string): CookieAttr[] {
  const attrs: CookieAttr[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    const key = (eq === -1 ? part : part.slice(0, eq)).replace(/^ +| +$/g, '');
    attrs.push({ key, value: eq === -1 ? null : part.slice(eq + 1).replace(/^ +| +$/g, '') });
  }
  return attrs;
}

/** Evaluates `value` with a regex match's captures ($1.., named ones) visible, as nginx's regex exec leaves them. */
function evaluateWithMatch(vars: Variables, value: ComplexValue, ctx: RequestContext, m: RegExpExecArray): string {
  const saved = ctx.captures;
  const savedNamed = ctx.namedCaptures;
  ctx.captures = [...m];
  ctx.namedCaptures = { ...savedNamed, ...(m.groups ?? {}) };
  try {
    return vars.evaluate(value, ctx);
  } finally {
    ctx.captures = saved;
    ctx.namedCaptures = savedNamed;
  }
}

/**
 * ngx_http_proxy_rewrite_domain_handler: the domain, a leading dot aside (kept in the result),
 * equals the pattern case-insensitively.
 */
function rewriteDomain(value: string, rule: CookieRewrite, ctx: RequestContext, vars: Variables): string | null {
  const pattern = vars.evaluate(rule.from as ComplexValue, ctx);
  const dot = value.startsWith('.') ? '.' : '';
  const domain = value.slice(dot.length);
  if (pattern.length !== domain.length || pattern.toLowerCase() !== domain.toLowerCase()) return null;
  return dot + vars.evaluate(rule.to, ctx);
}

/** ngx_http_proxy_rewrite_complex_handler: the path starts with the pattern, which is replaced. */
function rewritePath(value: string, rule: CookieRewrite, ctx: RequestContext, vars: Variables): string | null {
  const pattern = vars.evaluate(rule.from as ComplexValue, ctx);
  if (!value.startsWith(pattern)) return null;
  return vars.evaluate(rule.to, ctx) + value.slice(pattern.length);
}

/** The first rule that matches rewrites `value`; a regex anywhere in it replaces all of it (nginx's regex handler). */
function rewriteValue(
  value: string, rules: readonly CookieRewrite[], literal: typeof rewriteDomain, ctx: RequestContext, vars: Variables,
): string | null {
  for (const rule of rules) {
    if (rule.from instanceof RegExp) {
      const m = rule.from.exec(value);
      if (m !== null) return evaluateWithMatch(vars, rule.to, ctx, m);
      continue;
    }
    const out = literal(value, rule, ctx, vars);
    if (out !== null) return out;
  }
  return null;
}

// ngx_http_proxy_cookie_flags_masks: the bits edit() acts on.
const SECURE_ON = 1;
const SECURE_OFF = 2;
const HTTPONLY_ON = 4;
const HTTPONLY_OFF = 8;
const SAMESITE_STRICT = 16;
const SAMESITE_LAX = 32;
const SAMESITE_NONE = 64;
const SAMESITE_OFF = 128;

const FLAG_MASKS: ReadonlyMap<string, number> = new Map([
  ['secure', SECURE_ON], ['nosecure', SECURE_OFF], ['httponly', HTTPONLY_ON], ['nohttponly', HTTPONLY_OFF],
  ['samesite=strict', SAMESITE_STRICT], ['samesite=lax', SAMESITE_LAX], ['samesite=none', SAMESITE_NONE],
  ['nosamesite', SAMESITE_OFF],
]);

/**
 * ngx_http_proxy_rewrite_cookie_flags: the flags of the first line whose cookie name matches
 * (case-insensitively), evaluated now; a value naming no flag is skipped. 0 when none applies.
 */
function flagsFor(name: string, rules: readonly CookieFlagsRule[], ctx: RequestContext, vars: Variables): number {
  for (const rule of rules) {
    let values: string[];
    if (rule.cookie instanceof RegExp) {
      const m = rule.cookie.exec(name);
      if (m === null) continue;
      values = rule.flags.map((f) => evaluateWithMatch(vars, f, ctx, m));
    } else {
      const pattern = vars.evaluate(rule.cookie, ctx);
      if (pattern.length !== name.length || pattern.toLowerCase() !== name.toLowerCase()) continue;
      values = rule.flags.map((f) => vars.evaluate(f, ctx));
    }
    let mask = 0;
    for (const v of values) mask |= FLAG_MASKS.get(v.toLowerCase()) ?? 0;
    return mask;
  }
  return 0;
}

const SAMESITE_VALUES: ReadonlyMap<number, string> = new Map([
  [SAMESITE_STRICT, 'Strict'], [SAMESITE_LAX, 'Lax'], [SAMESITE_NONE, 'None'],
]);

/** The SameSite value appended when a wanted one is left (strict before lax before none). */
function sameSiteWanted(flags: number): string | null {
  return SAMESITE_VALUES.get(flags & SAMESITE_STRICT || flags & SAMESITE_LAX || flags & SAMESITE_NONE) ?? null;
}

/** ngx_http_proxy_edit_cookie_flags: existing attributes kept, removed or changed; missing ones appended. */
function editFlags(attrs: CookieAttr[], flags: number): void {
  let f = flags;
  for (let i = 1; i < attrs.length; i++) {
    const a = attrs[i]!;
    const key = a.key?.toLowerCase();
    if (key === 'secure') {
      if (f & SECURE_ON) f &= ~SECURE_ON;
      else if (f & SECURE_OFF) a.key = null;
    } else if (key === 'httponly') {
      if (f & HTTPONLY_ON) f &= ~HTTPONLY_ON;
      else if (f & HTTPONLY_OFF) a.key = null;
    } else if (key === 'samesite') {
      // One wanted value is consumed here (nginx checks strict, then lax, then none).
      const bit = f & SAMESITE_STRICT || f & SAMESITE_LAX || f & SAMESITE_NONE;
      if (bit !== 0) {
        f &= ~bit;
        const want = SAMESITE_VALUES.get(bit)!;
        if (a.value?.toLowerCase() !== want.toLowerCase()) {
          a.key = 'SameSite';
          a.value = want;
        }
      } else if (f & SAMESITE_OFF) {
        a.key = null;
      }
    }
  }
  if (f & SECURE_ON) attrs.push({ key: 'Secure', value: null });
  if (f & HTTPONLY_ON) attrs.push({ key: 'HttpOnly', value: null });
  const sameSite = sameSiteWanted(f);
  if (sameSite !== null) attrs.push({ key: 'SameSite', value: sameSite });
}

/**
 * One Set-Cookie value with this level's cookie rules applied. A cookie without `=` in its first
 * part is left alone, as nginx leaves it.
 */
export function rewriteSetCookie(header: string, settings: Settings, ctx: RequestContext, vars: Variables): string {
  const attrs = parseCookie(header);
  if (attrs[0]!.value === null) return header;
  let changed = false;
  const domains = settings.proxyCookieDomain;
  const paths = settings.proxyCookiePath;
  for (let i = 1; i < attrs.length; i++) {
    const a = attrs[i]!;
    if (a.value === null) continue;
    const key = a.key!.toLowerCase();
    let out: string | null = null;
    if (key === 'domain' && domains.length > 0) out = rewriteValue(a.value, domains, rewriteDomain, ctx, vars);
    else if (key === 'path' && paths.length > 0) out = rewriteValue(a.value, paths, rewritePath, ctx, vars);
    if (out !== null) {
      a.value = out;
      changed = true;
    }
  }
  if (settings.proxyCookieFlags.length > 0) {
    const flags = flagsFor(attrs[0]!.key!, settings.proxyCookieFlags, ctx, vars);
    if (flags !== 0) {
      editFlags(attrs, flags);
      changed = true;
    }
  }
  if (!changed) return header;
  const parts: string[] = [];
  for (const a of attrs) if (a.key !== null) parts.push(a.value === null ? a.key : `${a.key}=${a.value}`);
  return sendableHeaderValue('Set-Cookie', parts.join('; '));
}
