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
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

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
  {
    name: 'ssl_prefer_server_ciphers', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) ssl(scope).preferServerCiphers = v;
    },
  },
  {
    name: 'ssl_session_timeout', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) ssl(scope).sessionTimeout = v;
    },
  },
  {
    name: 'ssl_session_tickets', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) ssl(scope).sessionTickets = v;
    },
  },
  {
    name: 'ssl_password_file', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f !== null) ssl(scope).passwordFile = f;
    },
  },
  {
    name: 'ssl_client_certificate', contexts: HTTP_SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const f = fileArg(d, cx);
      if (f !== null) ssl(scope).clientCertificate = f;
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
    name: 'proxy_ssl_session_reuse', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) proxySsl(scope).sessionReuse = v;
    },
  },
];
