/**
 * The balancing methods of an `upstream` block, one nginx module each in nginx
 * (`least_conn`, `ip_hash`, `hash`, `random`), and nginx Plus's `sticky cookie`. A block has one
 * method; the default is weighted round-robin.
 */
import { createHash } from 'node:crypto';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Scope } from '../draft.js';
import { openFailedMessage } from '../include.js';
import type { Directive } from '../parser.js';
import { readText } from '../tls-files.js';
import type { BalanceMethod, ComplexValue, StickyCookie } from '../types.js';
import { parseDuration, parseSize } from '../units.js';
import { NOARGS, ONE_OR_MORE, TAKE12, type DirectiveSpec } from './table.js';

/** Defaults of `sticky cookie` (nginx Plus). */
export const STICKY_DEFAULTS = {
  path: '/',
} as const;

/** An RFC 6265 cookie-name: an RFC 7230 token. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A cookie Domain attribute: a host name, optionally with a leading dot. */
const COOKIE_DOMAIN = /^\.?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;
/** A cookie Path attribute: starts with "/", no ";" and no control characters (RFC 6265 path-value). */
const COOKIE_PATH = /^\/[^;\x00-\x1f\x7f]*$/;

/**
 * Records the method of the current upstream. nginx only warns on a second method and keeps the
 * last; Sluice rejects it, since one of the two lines is certainly not doing what was meant.
 */
function setMethod(d: Directive, scope: Scope, cx: BuildContext, value: BalanceMethod): void {
  const upstream = scope.upstream!;
  const previous = upstream.method;
  if (previous !== null) {
    cx.problem('load balancing method redefined', d,
      `upstream "${upstream.name}" already uses "${previous.directive}" (${previous.at.file}:${previous.at.line}); keep one balancing method`);
    return;
  }
  upstream.method = { value, directive: d.name, at: locOf(d) };
}

/** `hash KEY [consistent]` (ngx_http_upstream_hash). */
function hash(d: Directive, scope: Scope, cx: BuildContext): void {
  let consistent = false;
  if (d.args.length === 2) {
    if (d.args[1] !== 'consistent') {
      cx.problem(`invalid parameter "${d.args[1]!}"`, d, 'the only parameter after the key is "consistent"');
      return;
    }
    consistent = true;
  }
  const key = cx.complex(d.args[0]!, d);
  if (key === null) return;
  setMethod(d, scope, cx, { name: 'hash', key, consistent });
}

/** `random [two [least_conn]]` (ngx_http_upstream_random); `least_conn` is the only `two` method. */
function random(d: Directive, scope: Scope, cx: BuildContext): void {
  const [first, second] = d.args;
  if (first !== undefined && first !== 'two') {
    cx.problem(`invalid parameter "${first}"`, d, 'write "random;", "random two;" or "random two least_conn;"');
    return;
  }
  if (second !== undefined && second !== 'least_conn') {
    cx.problem(`invalid parameter "${second}"`, d, 'the only method for "random two" is "least_conn" (the default)');
    return;
  }
  setMethod(d, scope, cx, { name: 'random', two: first === 'two' });
}

/** Fewer bytes than this in a sticky secret file would make the server ids guessable. */
const MIN_SECRET_BYTES = 16;

/**
 * The key of `secret_file=FILE`: the file's bytes (surrounding whitespace trimmed, so a key
 * written by `openssl rand -hex 32 > FILE` works as is), hashed to 32 bytes (in hex: the config
 * is frozen, a Buffer cannot be).
 */
function stickySecret(cx: BuildContext, file: string, d: Directive): string | null {
  const path = cx.path(file);
  const r = readText(cx, path);
  if ('error' in r) {
    cx.problem(openFailedMessage(path, r.error), d, 'secret_file names a file of random bytes every instance reads, e.g. made by "openssl rand -hex 32"');
    return null;
  }
  const key = r.text.trim();
  if (Buffer.byteLength(key) < MIN_SECRET_BYTES) {
    cx.problem(`"${path}" must hold at least ${MIN_SECRET_BYTES} bytes of secret`, d, 'write a random key into it, e.g. "openssl rand -hex 32 > FILE"');
    return null;
  }
  return createHash('sha256').update(key).digest('hex');
}

/** `sticky cookie NAME [expires=TIME|max] [domain=D] [path=P] [httponly] [secure] [samesite=...]`. */
function sticky(d: Directive, scope: Scope, cx: BuildContext): void {
  const kind = d.args[0]!;
  if (kind === 'learn') {
    stickyLearn(d, scope, cx);
    return;
  }
  if (kind === 'route') {
    cx.problem(`the "${kind}" method of the "sticky" directive is not implemented`, d,
      'use "sticky cookie NAME;": Sluice sets a cookie naming the server, so no route variable is needed');
    return;
  }
  if (kind !== 'cookie') {
    cx.problem(`invalid parameter "${kind}"`, d, 'write "sticky cookie NAME [expires=TIME] [domain=D] [path=P] [httponly] [secure] [samesite=strict|lax|none];"');
    return;
  }
  const name = d.args[1];
  if (name === undefined) {
    cx.problem('invalid number of arguments in "sticky" directive', d, 'the cookie needs a name: "sticky cookie srv_id;"');
    return;
  }
  let ok = true;
  const invalid = (param: string, hint: string): void => {
    cx.problem(`invalid parameter "${param}"`, d, hint);
    ok = false;
  };
  if (!COOKIE_NAME.test(name)) invalid(name, 'a cookie name is a token: letters, digits and !#$%&\'*+-.^_`|~');
  const cookie: { -readonly [K in keyof StickyCookie]: StickyCookie[K] } = {
    name, expires: null, domain: null, path: STICKY_DEFAULTS.path, httpOnly: false, secure: false, sameSite: null, secret: null,
  };
  for (const param of d.args.slice(2)) {
    const eq = param.indexOf('=');
    const key = eq < 0 ? param : param.slice(0, eq);
    const value = eq < 0 ? null : param.slice(eq + 1);
    if (key === 'expires' && value !== null) {
      // nginx Plus: seconds (ngx_parse_time is_sec), or "max" for 31 Dec 2037 23:55:55 GMT.
      const t = value === 'max' ? Number.POSITIVE_INFINITY : parseDuration(value, true);
      if (t === null) invalid(param, 'expires is a duration such as 1h, or "max"');
      else cookie.expires = t;
    } else if (key === 'domain' && value !== null) {
      if (!COOKIE_DOMAIN.test(value)) invalid(param, 'domain is a host name such as example.com or .example.com');
      else cookie.domain = value;
    } else if (key === 'path' && value !== null) {
      if (!COOKIE_PATH.test(value)) invalid(param, 'path starts with "/" and has no ";"');
      else cookie.path = value;
    } else if (key === 'samesite' && value !== null) {
      const v = value.toLowerCase();
      if (v !== 'strict' && v !== 'lax' && v !== 'none') invalid(param, 'samesite is strict, lax or none');
      else cookie.sameSite = v;
    } else if (key === 'secret_file' && value !== null && value !== '') {
      const secret = stickySecret(cx, value, d);
      if (secret === null) ok = false;
      else cookie.secret = secret;
    } else if (param === 'httponly') {
      cookie.httpOnly = true;
    } else if (param === 'secure') {
      cookie.secure = true;
    } else {
      invalid(param, 'sticky cookie parameters are expires=TIME|max, domain=D, path=P, httponly, secure, samesite=strict|lax|none and secret_file=FILE');
    }
  }
  if (ok) scope.upstream!.sticky = cookie;
}

/** nginx Plus's default `timeout=` of `sticky learn`: 10 minutes. */
const LEARN_TIMEOUT = 600_000;
/** The smallest zone, as for limit zones: 8 pages. */
const MIN_LEARN_ZONE = 8 * 4096;

/**
 * `sticky learn create=$V lookup=$V zone=NAME:SIZE [timeout=TIME] [header] [sync]` (nginx Plus;
 * create and lookup may repeat: the first non-empty value counts).
 */
function stickyLearn(d: Directive, scope: Scope, cx: BuildContext): void {
  const create: ComplexValue[] = [];
  const lookup: ComplexValue[] = [];
  let zone: { name: string; size: number } | null = null;
  let timeout = LEARN_TIMEOUT;
  let header = false;
  let sync = false;
  const usage = 'write "sticky learn create=$upstream_cookie_NAME lookup=$cookie_NAME zone=NAME:SIZE [timeout=TIME] [header] [sync];"';
  for (const param of d.args.slice(1)) {
    if (param.startsWith('create=') || param.startsWith('lookup=')) {
      const text = param.slice(7);
      const v = text.startsWith('$') ? cx.complex(text, d) : null;
      if (v === null) {
        if (!text.startsWith('$')) cx.problem(`invalid parameter "${param}"`, d, `${param.slice(0, 6)} takes a variable, e.g. "${param.slice(0, 7)}$${param.startsWith('c') ? 'upstream_' : ''}cookie_sessionid"`);
        return;
      }
      (param.startsWith('create=') ? create : lookup).push(v);
    } else if (param.startsWith('zone=')) {
      const spec = param.slice(5);
      const colon = spec.indexOf(':');
      const size = colon <= 0 ? null : parseSize(spec.slice(colon + 1));
      if (size === null) {
        cx.problem(`invalid zone size "${param}"`, d, 'write the zone as "zone=NAME:SIZE", e.g. "zone=client_sessions:1m"');
        return;
      }
      if (size < MIN_LEARN_ZONE) {
        cx.problem(`zone "${param}" is too small`, d, `a zone needs at least ${MIN_LEARN_ZONE / 1024}k (8 pages), e.g. "zone=${spec.slice(0, colon)}:1m"`);
        return;
      }
      zone = { name: spec.slice(0, colon), size };
    } else if (param.startsWith('timeout=')) {
      const t = parseDuration(param.slice(8));
      if (t === null || t <= 0) {
        cx.problem(`invalid parameter "${param}"`, d, 'timeout is a duration such as 1h');
        return;
      }
      timeout = t;
    } else if (param === 'header') {
      header = true;
    } else if (param === 'sync') {
      sync = true;
    } else {
      cx.problem(`invalid parameter "${param}"`, d, usage);
      return;
    }
  }
  for (const [name, given] of [['create', create.length > 0], ['lookup', lookup.length > 0], ['zone', zone !== null]] as const) {
    if (!given) {
      cx.problem(`"${name}" parameter is missing in "sticky learn"`, d, usage);
      return;
    }
  }
  scope.upstream!.stickyLearn = { create, lookup, zone: zone!.name, size: zone!.size, timeout, header, sync };
}

export const balancingDirectives: readonly DirectiveSpec[] = [
  // Repeatable so that a second method line gets nginx's "load balancing method redefined".
  // `least_conn fleet` (Sluice's own): counts the fleet's connections (directives/fleet.ts).
  {
    name: 'least_conn', contexts: ['upstream'], args: [0, 1], repeatable: true,
    handle(d, scope, cx) {
      const arg = d.args[0];
      // nginx's least_conn takes no arguments: anything but Sluice's `fleet` gets its message.
      if (arg !== undefined && arg !== 'fleet') {
        cx.problem('invalid number of arguments in "least_conn" directive', d, 'write "least_conn;" or "least_conn fleet;" (counting the connections of every fleet member)');
        return;
      }
      setMethod(d, scope, cx, arg === 'fleet' ? { name: 'least_conn', fleet: true } : { name: 'least_conn' });
    },
  },
  {
    name: 'ip_hash', contexts: ['upstream'], args: NOARGS, repeatable: true,
    handle(d, scope, cx) {
      setMethod(d, scope, cx, { name: 'ip_hash' });
    },
  },
  { name: 'hash', contexts: ['upstream'], args: TAKE12, repeatable: true, handle: hash },
  { name: 'random', contexts: ['upstream'], args: [0, 2], repeatable: true, handle: random },
  { name: 'sticky', contexts: ['upstream'], args: ONE_OR_MORE, handle: sticky },
];
