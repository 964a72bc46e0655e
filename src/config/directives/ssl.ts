/**
 * ngx_http_ssl_module (TLS to clients), `http2` (ngx_http_v2_module) and the `proxy_ssl_*`
 * directives of ngx_http_proxy_module (TLS to upstreams). The handlers only record what is
 * written; files are read and checked once the whole config is known (`src/config/tls.ts`).
 */
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Scope, SettingsDraft } from '../draft.js';
import type { Directive } from '../parser.js';
import type { ConfigFileRef, TlsProtocol } from '../types.js';
import { checkConfCommand } from '../tls-conf-command.js';
import { checkEcdhCurve } from '../tls-key-exchange.js';
import { parseNumber, parseSize } from '../units.js';
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, TAKE12, TAKE2, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

const HTTP_SERVER = ['http', 'server'] as const;

export const TLS_PROTOCOLS: readonly TlsProtocol[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

function ssl(scope: Scope): NonNullable<SettingsDraft['ssl']> {
  return (settingsOf(scope).ssl ??= {});
}

function proxySsl(scope: Scope): NonNullable<SettingsDraft['proxySsl']> {
  return (settingsOf(scope).proxySsl ??= {});
}

/** A file argument: made absolute against the prefix. nginx allows variables in some; Sluice reads files at load. */
function fileArg(d: Directive, cx: BuildContext): ConfigFileRef | null {
  const text = d.args[0]!;
  if (text.includes('$')) {
    cx.problem(`variables in "${d.name}" are not supported "${text}"`, d,
      'Sluice reads certificates when the configuration is loaded; write the path literally (one server per certificate, chosen by SNI)');
    return null;
  }
  return { path: cx.path(text), loc: locOf(d) };
}

/** `ssl_protocols` / `proxy_ssl_protocols`: nginx's bitmask slot (`invalid value "x"`). */
function protocols(d: Directive, cx: BuildContext): TlsProtocol[] | null {
  const out: TlsProtocol[] = [];
  for (const v of d.args) {
    if ((TLS_PROTOCOLS as readonly string[]).includes(v)) {
      if (!out.includes(v as TlsProtocol)) out.push(v as TlsProtocol);
    } else if (v === 'SSLv2' || v === 'SSLv3') {
      cx.problem(`invalid value "${v}"`, d, `${v} is insecure and not supported by Node.js; use TLSv1.2 TLSv1.3`);
      return null;
    } else {
      cx.problem(`invalid value "${v}"`, d, `"${d.name}" takes any of ${TLS_PROTOCOLS.join(' ')}`);
      return null;
    }
  }
  return out;
}

/** nginx refuses a shared session cache smaller than 8 memory pages (ngx_http_ssl_session_cache). */
const MIN_SHARED_CACHE = 8 * 4096;

/** Shared cache zones by name, per load: one name is one zone, whose size must agree everywhere. */
const sharedZones = new WeakMap<BuildContext, Map<string, number>>();

/** `ssl_session_cache off | none | [builtin[:size]] [shared:name:size]`, as ngx_http_ssl_session_cache reads it. */
function sessionCache(d: Directive, scope: Scope, cx: BuildContext): void {
  let builtin: SslDraft['sessionCache'];
  let shared: SslDraft['sessionCacheShared'];
  for (const v of d.args) {
    const invalid = (): void => cx.problem(`invalid session cache "${v}"`, d,
      'use "off", "none", "builtin[:SESSIONS]" and/or "shared:NAME:SIZE" (e.g. "shared:SSL:10m")');
    if (v === 'off' || v === 'none') {
      builtin = v;
    } else if (v === 'builtin') {
      // OpenSSL's default size (SSL_SESSION_CACHE_MAX_SIZE_DEFAULT).
      builtin = 20480;
    } else if (v.startsWith('builtin:') && v.length > 'builtin:'.length) {
      const n = parseNumber(v.slice('builtin:'.length));
      if (n === null) return invalid();
      builtin = n;
    } else if (v.startsWith('shared:') && v.length > 'shared:'.length) {
      const rest = v.slice('shared:'.length);
      const colon = rest.indexOf(':');
      if (colon <= 0) return invalid();
      const name = rest.slice(0, colon);
      const size = parseSize(rest.slice(colon + 1));
      if (size === null) return invalid();
      if (size < MIN_SHARED_CACHE) {
        cx.problem(`session cache "${v}" is too small`, d, `a shared session cache needs at least ${MIN_SHARED_CACHE / 1024}k; "10m" holds about 40000 sessions`);
        return;
      }
      let zones = sharedZones.get(cx);
      if (zones === undefined) sharedZones.set(cx, zones = new Map());
      const known = zones.get(name);
      if (known !== undefined && known !== size) {
        cx.problem(`the size ${size} of shared memory zone "${name}" conflicts with already declared size ${known}`, d,
          `every "ssl_session_cache shared:${name}:SIZE" must give the zone one size`);
        return;
      }
      zones.set(name, size);
      shared = { name, size };
    } else {
      return invalid();
    }
  }
  const s = ssl(scope);
  // nginx: a shared cache written alone turns the builtin one off (NGX_SSL_NO_BUILTIN_SCACHE).
  s.sessionCache = builtin ?? 'nobuiltin';
  // nginx merges the zone on its own: "ssl_session_cache builtin;" in a server keeps http's zone.
  if (shared !== undefined) s.sessionCacheShared = shared;
}

type SslDraft = NonNullable<SettingsDraft['ssl']>;

type Keys<T, V> = { [K in keyof T]-?: NonNullable<T[K]> extends V ? K : never }[keyof T];

/** An `on | off` ssl setting. */
function sslFlag(name: string, key: Keys<SslDraft, boolean>): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) ssl(scope)[key] = v;
    },
  };
}

/** An ssl setting that names one file. */
function sslFile(name: string, key: Keys<SslDraft, ConfigFileRef>): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f !== null) ssl(scope)[key] = f;
    },
  };
}

/** `ssl_verify_depth` / `proxy_ssl_verify_depth`: ngx_conf_set_num_slot's "invalid number". */
function verifyDepth(d: Directive, cx: BuildContext): number | null {
  const v = parseNumber(d.args[0]!);
  if (v === null) cx.problem(`"${d.name}" directive invalid number`, d, 'the most intermediate CA certificates allowed in the chain, a whole number (default 1)');
  return v;
}

/** `ssl_conf_command` / `proxy_ssl_conf_command NAME VALUE`: repeatable; a level with any line inherits none. */
function confCommand(key: 'ssl' | 'proxySsl'): DirectiveSpec['handle'] {
  return (d, scope, cx) => {
    const [name, value] = d.args as [string, string];
    const cmd = checkConfCommand(name, value);
    if (typeof cmd === 'string') {
      cx.problem(`SSL_CONF_cmd("${name}", "${value}") failed`, d, cmd);
      return;
    }
    const s = key === 'ssl' ? ssl(scope) : proxySsl(scope);
    s.confCommands = [...(s.confCommands ?? []), cmd];
  };
}

export const sslDirectives: readonly DirectiveSpec[] = [
  {
    // nginx 1.22 still honours it, with this warning (ngx_http_ssl_enable); what it does is applied
    // once servers are grouped by address (src/config/tls.ts, applySslOn).
    name: 'ssl', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v === null) return;
      cx.warn('the "ssl" directive is deprecated, use the "listen ... ssl" directive instead', d,
        'write "ssl" on the listen lines instead (e.g. "listen 443 ssl;") and remove this line');
      ssl(scope).sslOn = v ? locOf(d) : null;
    },
  },
  {
    name: 'ssl_certificate', contexts: HTTP_SERVER, args: TAKE1, repeatable: true,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f === null) return;
      // A level with any line of its own inherits none (nginx's array merge).
      const s = ssl(scope);
      s.certificates = [...(s.certificates ?? []), f];
    },
  },
  {
    name: 'ssl_certificate_key', contexts: HTTP_SERVER, args: TAKE1, repeatable: true,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f === null) return;
      const s = ssl(scope);
      s.certificateKeys = [...(s.certificateKeys ?? []), f];
    },
  },
  {
    name: 'ssl_protocols', contexts: HTTP_SERVER, args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const p = protocols(d, cx);
      if (p !== null) ssl(scope).protocols = p;
    },
  },
  {
    name: 'ssl_ciphers', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope) {
      ssl(scope).ciphers = d.args[0]!;
    },
  },
  sslFlag('ssl_prefer_server_ciphers', 'preferServerCiphers'),
  {
    name: 'ssl_session_timeout', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) ssl(scope).sessionTimeout = v;
    },
  },
  sslFlag('ssl_session_tickets', 'sessionTickets'),
  { name: 'ssl_session_cache', contexts: HTTP_SERVER, args: TAKE12, handle: sessionCache },
  {
    // Several lines rotate keys in nginx: the first encrypts, the others only decrypt.
    name: 'ssl_session_ticket_key', contexts: HTTP_SERVER, args: TAKE1, repeatable: true,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f === null) return;
      const s = ssl(scope);
      s.sessionTicketKeys = [...(s.sessionTicketKeys ?? []), f];
    },
  },
  sslFile('ssl_dhparam', 'dhparam'),
  {
    name: 'ssl_ecdh_curve', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      if (checkEcdhCurve(cx, d.args[0]!, locOf(d))) ssl(scope).ecdhCurve = d.args[0]!;
    },
  },
  sslFlag('ssl_stapling', 'stapling'),
  sslFlag('ssl_stapling_verify', 'staplingVerify'),
  sslFile('ssl_stapling_file', 'staplingFile'),
  {
    name: 'ssl_stapling_responder', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope) {
      ssl(scope).staplingResponder = d.args[0]!;
    },
  },
  sslFile('ssl_trusted_certificate', 'trustedCertificate'),
  {
    name: 'ssl_buffer_size', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseSize(d.args[0]!);
      if (v === null) cx.problem(`"${d.name}" directive invalid value`, d, `"${d.args[0]!}" is not a size ("16k", "4k")`);
      else ssl(scope).bufferSize = v;
    },
  },
  {
    name: 'ssl_early_data', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, _scope, cx) {
      const v = parseFlag(d, cx);
      // nginx built on a TLS library without 0-RTT warns in these words and serves on (ngx_ssl_early_data):
      // Node.js's TLS is such a library, so `on` means what it means there.
      if (v === true) {
        cx.warn('"ssl_early_data" is not supported on this platform, ignored', d,
          'Node.js offers no TLS 1.3 early data (0-RTT) to servers: clients send their request after the handshake, as with "ssl_early_data off"');
      }
    },
  },
  sslFile('ssl_password_file', 'passwordFile'),
  sslFile('ssl_client_certificate', 'clientCertificate'),
  sslFile('ssl_crl', 'crl'),
  { name: 'ssl_conf_command', contexts: HTTP_SERVER, args: TAKE2, repeatable: true, handle: confCommand('ssl') },
  { name: 'proxy_ssl_conf_command', contexts: HTTP_SERVER_LOCATION, args: TAKE2, repeatable: true, handle: confCommand('proxySsl') },
  {
    name: 'ssl_verify_depth', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = verifyDepth(d, cx);
      if (v !== null) ssl(scope).verifyDepth = v;
    },
  },
  {
    name: 'ssl_verify_client', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = d.args[0]!;
      if (v === 'on' || v === 'off' || v === 'optional') {
        ssl(scope).verifyClient = v;
      } else if (v === 'optional_no_ca') {
        cx.problem('the "optional_no_ca" value of "ssl_verify_client" is not implemented', d,
          'use "optional" with an ssl_client_certificate that lists the CAs to accept');
      } else {
        cx.problem(`invalid value "${v}" in "${d.name}" directive, it must be "on", "off", "optional" or "optional_no_ca"`, d);
      }
    },
  },
  {
    name: 'http2', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) settingsOf(scope).http2 = v;
    },
  },
  {
    name: 'proxy_ssl_verify', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) proxySsl(scope).verify = v;
    },
  },
  {
    name: 'proxy_ssl_trusted_certificate', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f !== null) proxySsl(scope).trustedCertificate = f;
    },
  },
  {
    name: 'proxy_ssl_server_name', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) proxySsl(scope).serverName = v;
    },
  },
  {
    name: 'proxy_ssl_name', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.complex(d.args[0]!, d);
      if (v !== null) proxySsl(scope).name = v;
    },
  },
  {
    name: 'proxy_ssl_certificate', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f !== null) proxySsl(scope).certificate = f;
    },
  },
  {
    name: 'proxy_ssl_certificate_key', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f !== null) proxySsl(scope).certificateKey = f;
    },
  },
  {
    name: 'proxy_ssl_password_file', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f !== null) proxySsl(scope).passwordFile = f;
    },
  },
  {
    name: 'proxy_ssl_protocols', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const p = protocols(d, cx);
      if (p !== null) proxySsl(scope).protocols = p;
    },
  },
  {
    name: 'proxy_ssl_ciphers', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope) {
      proxySsl(scope).ciphers = d.args[0]!;
    },
  },
  {
    name: 'proxy_ssl_verify_depth', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = verifyDepth(d, cx);
      if (v !== null) proxySsl(scope).verifyDepth = v;
    },
  },
  {
    name: 'proxy_ssl_crl', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f !== null) proxySsl(scope).crl = f;
    },
  },
  {
    name: 'proxy_ssl_session_reuse', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) proxySsl(scope).sessionReuse = v;
    },
  },
];
