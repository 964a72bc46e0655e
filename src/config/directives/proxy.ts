/** ngx_http_proxy_module: the proxy_* directives Sluice implements. */
import { splitHostPort, splitUnixUrl } from '../address.js';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import { nativeAddonProblem } from '../../core/native-addon.js';
import type { ComplexValue, NextUpstreamCondition, ProxyRedirect } from '../types.js';
import {
  ONE_OR_MORE, TAKE1, TAKE12, TAKE2, HTTP_SERVER_LOCATION, durationSetting, numberSetting, parseEnum, parseFlag,
  settingsOf, sizeSetting, type DirectiveSpec,
} from './table.js';

export const NEXT_UPSTREAM_CONDITIONS: readonly NextUpstreamCondition[] = [
  'error', 'timeout', 'invalid_header', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404',
  'http_429', 'non_idempotent',
];

/** `proxy_next_upstream` / `fastcgi_next_upstream`: the conditions, empty for `off`. */
export function parseNextUpstream(d: Directive, cx: BuildContext): Set<NextUpstreamCondition> | null {
  const set = new Set<NextUpstreamCondition>();
  let off = false;
  for (const v of d.args) {
    if (v === 'off') {
      off = true;
    } else if ((NEXT_UPSTREAM_CONDITIONS as readonly string[]).includes(v)) {
      set.add(v as NextUpstreamCondition);
    } else {
      cx.problem(`invalid value "${v}"`, d, `use off or any of ${NEXT_UPSTREAM_CONDITIONS.join(' ')}`);
      return null;
    }
  }
  return off ? new Set() : set;
}

const URI_IN_REGEX_LOCATION =
  '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, '
  + 'or inside "if" statement, or inside "limit_except" block';

function proxyPass(d: Directive, scope: Scope, cx: BuildContext): void {
  scope.location!.proxyPassWritten = true;
  const url = d.args[0]!;
  if (url.includes('$')) {
    variableProxyPass(url, d, scope, cx);
    return;
  }
  const lower = url.toLowerCase();
  const scheme = lower.startsWith('https://') ? 'https' : lower.startsWith('http://') ? 'http' : null;
  if (scheme === null) {
    cx.problem(`invalid URL prefix in "${url}"`, d, 'proxy_pass takes http[s]://HOST[:PORT][/URI] or http[s]://UPSTREAM_NAME[/URI]');
    return;
  }
  const rest = url.slice(`${scheme}://`.length);
  const unix = splitUnixUrl(rest);
  if (unix !== null) {
    if (unix.path === '') {
      cx.problem(`no path in the unix domain socket "${rest}"`, d, 'write proxy_pass http://unix:/path/to/socket[:/uri]');
      return;
    }
    const location = scope.location!;
    if (unix.uri !== null && (location.modifier === '~' || location.modifier === '~*' || location.modifier === '@')) {
      cx.problem(URI_IN_REGEX_LOCATION, d, `remove ":${unix.uri}" from the URL; the request URI is passed unchanged`);
      return;
    }
    // nginx's $proxy_host for a unix socket is "localhost" (ngx_http_proxy_set_vars).
    settingsOf(scope).proxyPass = { url, scheme, host: `unix:${unix.path}`, port: null, uri: unix.uri, proxyHost: 'localhost', unixPath: unix.path, at: locOf(d) };
    return;
  }
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const uri = slash < 0 ? null : rest.slice(slash);
  const r = splitHostPort(authority);
  if (!r.ok) {
    cx.problem(`${r.error} in upstream "${rest}"`, d);
    return;
  }
  const location = scope.location!;
  if (uri !== null && (location.modifier === '~' || location.modifier === '~*' || location.modifier === '@' || location.modifier === 'if')) {
    cx.problem(URI_IN_REGEX_LOCATION, d, `remove "${uri}" from the URL; the request URI is passed unchanged`);
    return;
  }
  // $proxy_host: the host as written, with the port when one is written and is not the scheme's default.
  const port = r.value.port;
  const hostText = port === null ? authority : authority.slice(0, authority.lastIndexOf(':'));
  const proxyHost = port === null || port === (scheme === 'https' ? 443 : 80) ? hostText : authority;
  settingsOf(scope).proxyPass = { url, scheme, host: r.value.host, port, uri, proxyHost, at: locOf(d) };
}

/**
 * nginx's ngx_http_proxy_pass for a URL with variables: nothing is checked at load (not even the
 * scheme, which may itself be a variable); each request evaluates the URL (proxy/session/
 * variable-target.ts). A URI part is allowed in any location, since the evaluated one replaces
 * the request URI whole.
 */
function variableProxyPass(url: string, d: Directive, scope: Scope, cx: BuildContext): void {
  const variable = cx.complex(url, d);
  if (variable === null) return;
  // The scheme decides whether the location's proxy_ssl_* files are loaded: any URL that may
  // turn out https:// gets them.
  const scheme = url.toLowerCase().startsWith('http://') ? 'http' : 'https';
  settingsOf(scope).proxyPass = { url, scheme, host: '', port: null, uri: null, proxyHost: '', variable, at: locOf(d) };
}

function proxyRedirect(d: Directive, scope: Scope, cx: BuildContext): void {
  const settings = settingsOf(scope);
  let line: ProxyRedirect;
  if (d.args.length === 1) {
    const v = d.args[0]!;
    if (v !== 'default' && v !== 'off') {
      cx.problem(`invalid parameter "${v}"`, d, 'use "proxy_redirect default", "proxy_redirect off" or "proxy_redirect FROM TO"');
      return;
    }
    if (v === 'default' && scope.settings?.proxyPass?.variable !== undefined) {
      cx.problem('"proxy_redirect default" cannot be used with "proxy_pass" directive with variables', d,
        'write the rule out: "proxy_redirect http://HOST:PORT/ /;"');
      return;
    }
    line = { mode: v };
  } else {
    const [fromText, toText] = d.args as [string, string];
    let from: ComplexValue | RegExp | null;
    if (fromText.startsWith('~')) {
      const caseless = fromText.startsWith('~*');
      from = cx.regex(fromText.slice(caseless ? 2 : 1), caseless, d);
    } else {
      from = cx.complex(fromText, d);
    }
    const to = cx.complex(toText, d);
    if (from === null || to === null) return;
    line = { mode: 'rules', rules: [{ from, to }] };
  }
  const prev = settings.proxyRedirect;
  // nginx: "off" anywhere at a level wins over the other lines of that level.
  if (prev === undefined || line.mode === 'off') {
    settings.proxyRedirect = line;
    return;
  }
  if (prev.mode === 'off') return;
  if (prev.mode === 'rules' && line.mode === 'rules') {
    settings.proxyRedirect = { mode: 'rules', rules: [...prev.rules, ...line.rules] };
    return;
  }
  if (prev.mode === 'default' && line.mode === 'default') return;
  cx.problem('"proxy_redirect default" cannot be combined with other proxy_redirect rules', d,
    'write the default rule out instead: "proxy_redirect PROXY_PASS_URL LOCATION_PREFIX;"');
}

export const proxyDirectives: readonly DirectiveSpec[] = [
  { name: 'proxy_pass', contexts: ['location'], args: TAKE1, handle: proxyPass },
  {
    name: 'proxy_http_version', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseEnum(d, d.args[0]!, ['1.0', '1.1'] as const, cx);
      if (v !== null) settingsOf(scope).proxyHttpVersion = v;
    },
  },
  {
    name: 'proxy_set_header', contexts: HTTP_SERVER_LOCATION, args: TAKE2, repeatable: true,
    handle(d, scope, cx) {
      const value = cx.headerField(d.args[0]!, d.args[1]!, d);
      if (value !== null) (settingsOf(scope).proxySetHeaders ??= []).push({ name: d.args[0]!, value });
    },
  },
  durationSetting('proxy_connect_timeout', 'proxyConnectTimeout'),
  durationSetting('proxy_read_timeout', 'proxyReadTimeout'),
  durationSetting('proxy_send_timeout', 'proxySendTimeout'),
  { name: 'proxy_redirect', contexts: HTTP_SERVER_LOCATION, args: TAKE12, repeatable: true, handle: proxyRedirect },
  {
    name: 'proxy_next_upstream', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const set = parseNextUpstream(d, cx);
      if (set !== null) settingsOf(scope).proxyNextUpstream = set;
    },
  },
  numberSetting('proxy_next_upstream_tries', 'proxyNextUpstreamTries'),
  durationSetting('proxy_next_upstream_timeout', 'proxyNextUpstreamTimeout'),
  {
    // Sluice's own: where upgraded connections are relayed once open (native/sluice_tunnel.c).
    name: 'native_tunnels', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseEnum(d, d.args[0]!, ['auto', 'on', 'off'] as const, cx);
      if (v === null) return;
      const why = v === 'on' ? nativeAddonProblem() : '';
      if (why !== '') {
        cx.problem(`"native_tunnels on" needs the native tunnel addon, but ${why}`, d,
          'build it with "npm run build:native" (node-gyp, a C compiler and Linux), or write "native_tunnels auto"');
        return;
      }
      settingsOf(scope).nativeTunnels = v;
    },
  },
  sizeSetting('proxy_buffer_size', 'proxyBufferSize'),
  // Repeatable; the lines of one level form one list, and a level with any inherits none (nginx's
  // array merge).
  {
    name: 'proxy_hide_header', contexts: HTTP_SERVER_LOCATION, args: TAKE1, repeatable: true,
    handle(d, scope) {
      (settingsOf(scope).proxyHideHeaders ??= []).push(d.args[0]!.toLowerCase());
    },
  },
  {
    name: 'proxy_pass_header', contexts: HTTP_SERVER_LOCATION, args: TAKE1, repeatable: true,
    handle(d, scope) {
      (settingsOf(scope).proxyPassHeaders ??= []).push(d.args[0]!.toLowerCase());
    },
  },
  {
    name: 'proxy_pass_request_headers', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) settingsOf(scope).proxyPassRequestHeaders = v;
    },
  },
  {
    name: 'proxy_pass_request_body', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) settingsOf(scope).proxyPassRequestBody = v;
    },
  },
  {
    name: 'proxy_buffering', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) settingsOf(scope).proxyBuffering = v;
    },
  },
];
