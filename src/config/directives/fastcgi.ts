/**
 * ngx_http_fastcgi_module: `fastcgi_pass` and the fastcgi_* directives Sluice implements. The
 * address takes nginx's forms (`HOST:PORT`, `unix:/path`, an upstream{} name) and is tied to an
 * upstream as proxy_pass's is (resolve.ts); the client is proxy/client/fastcgi-client.ts.
 */
import { resolve } from 'node:path';
import { splitHostPort, splitUnixUrl } from '../address.js';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { FastcgiSettings } from '../types.js';
import { parseIgnoreHeaders, parseTempPath } from './buffering.js';
import { parseNextUpstream } from './proxy.js';
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, TAKE2, TAKE23, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

type Draft = { -readonly [K in keyof FastcgiSettings]?: FastcgiSettings[K] };

function draftOf(scope: Scope): Draft {
  return (settingsOf(scope).fastcgi ??= {});
}

/** nginx's defaults (ngx_http_fastcgi_merge_loc_conf). */
export function fastcgiDefaults(prefix: string): FastcgiSettings {
  return {
    params: [],
    index: null,
    splitPathInfo: null,
    keepConn: false,
    connectTimeout: 60_000,
    sendTimeout: 60_000,
    readTimeout: 60_000,
    interceptErrors: false,
    hideHeaders: [],
    passHeaders: [],
    ignoreHeaders: new Set<string>(),
    passRequestHeaders: true,
    passRequestBody: true,
    requestBuffering: true,
    buffering: true,
    bufferSize: 4096,
    buffers: { number: 8, size: 4096 },
    busyBuffersSize: null,
    tempPath: { path: resolve(prefix, 'fastcgi_temp'), levels: [] },
    maxTempFileSize: 1024 * 1024 * 1024,
    tempFileWriteSize: null,
    ignoreClientAbort: false,
    nextUpstream: new Set(['error', 'timeout']),
    nextUpstreamTries: 0,
    nextUpstreamTimeout: 0,
  };
}

/**
 * `fastcgi_pass ADDRESS`: `HOST:PORT`, `unix:/path` or the name of an upstream{} block (nginx's
 * ngx_http_fastcgi_pass: no scheme, no URI). An address with variables is refused for now.
 */
function fastcgiPass(d: Directive, scope: Scope, cx: BuildContext): void {
  scope.location!.proxyPassWritten = true;
  const address = d.args[0]!;
  if (address.includes('$')) {
    cx.problem('"fastcgi_pass" with variables is not supported', d, 'name the server or an upstream{} block: fastcgi_pass 127.0.0.1:9000; or fastcgi_pass unix:/run/php/php-fpm.sock;');
    return;
  }
  const at = locOf(d);
  const unix = splitUnixUrl(address);
  if (unix !== null) {
    if (unix.path === '' || unix.uri !== null) {
      cx.problem(`invalid URL prefix in "${address}"`, d, 'write fastcgi_pass unix:/path/to/socket;');
      return;
    }
    settingsOf(scope).proxyPass = { url: address, scheme: 'fastcgi', host: `unix:${unix.path}`, port: null, uri: null, proxyHost: 'localhost', unixPath: unix.path, at };
    return;
  }
  const r = splitHostPort(address);
  if (!r.ok) {
    cx.problem(`${r.error} in upstream "${address}"`, d, 'fastcgi_pass takes HOST:PORT, unix:/path or the name of an upstream{} block');
    return;
  }
  settingsOf(scope).proxyPass = { url: address, scheme: 'fastcgi', host: r.value.host, port: r.value.port, uri: null, proxyHost: address, at };
}

/** `fastcgi_param NAME VALUE [if_not_empty]`; the lines of one level form one list (nginx's array merge). */
function fastcgiParam(d: Directive, scope: Scope, cx: BuildContext): void {
  const [name, raw, flag] = d.args as [string, string, string | undefined];
  if (flag !== undefined && flag !== 'if_not_empty') {
    cx.problem(`invalid parameter "${flag}"`, d, 'the only flag is "if_not_empty"');
    return;
  }
  const value = cx.complex(raw, d);
  if (value === null) return;
  const draft = draftOf(scope);
  draft.params = [...(draft.params ?? []), { name, value, ifNotEmpty: flag !== undefined }];
}

/** ngx_http_fastcgi_split_path_info: a regex with exactly two captures. */
function splitPathInfo(d: Directive, scope: Scope, cx: BuildContext): void {
  const source = d.args[0]!;
  const caseless = source.startsWith('~*');
  const regex = cx.regex(caseless ? source.slice(2) : source, caseless, d);
  if (regex === null) return;
  // The number of groups: what matching the empty alternative reports.
  const captures = new RegExp(`${regex.source}|`, regex.flags).exec('')!.length - 1;
  if (captures !== 2) {
    cx.problem(`pattern "${source}" must have 2 captures`, d, 'write one capture for the script name and one for the path info: ^(.+\\.php)(/.+)$');
    return;
  }
  draftOf(scope).splitPathInfo = regex;
}

type FlagKey = 'keepConn' | 'interceptErrors' | 'passRequestHeaders' | 'passRequestBody' | 'requestBuffering' | 'buffering' | 'ignoreClientAbort';
type DurationKey = 'connectTimeout' | 'sendTimeout' | 'readTimeout' | 'nextUpstreamTimeout';
type SizeKey = 'bufferSize' | 'busyBuffersSize' | 'maxTempFileSize' | 'tempFileWriteSize';

function flag(name: string, key: FlagKey): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) draftOf(scope)[key] = v;
    },
  };
}

function duration(name: string, key: DurationKey): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) draftOf(scope)[key] = v;
    },
  };
}

function size(name: string, key: SizeKey): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.size(d, d.args[0]!);
      if (v !== null) draftOf(scope)[key] = v;
    },
  };
}

function headerList(name: string, key: 'hideHeaders' | 'passHeaders'): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1, repeatable: true,
    handle(d, scope) {
      const draft = draftOf(scope);
      draft[key] = [...(draft[key] ?? []), d.args[0]!.toLowerCase()];
    },
  };
}

export const fastcgiDirectives: readonly DirectiveSpec[] = [
  { name: 'fastcgi_pass', contexts: ['location'], args: TAKE1, handle: fastcgiPass },
  { name: 'fastcgi_param', contexts: HTTP_SERVER_LOCATION, args: TAKE23, repeatable: true, handle: fastcgiParam },
  {
    name: 'fastcgi_index', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope) {
      draftOf(scope).index = d.args[0]!;
    },
  },
  { name: 'fastcgi_split_path_info', contexts: ['location'], args: TAKE1, handle: splitPathInfo },
  flag('fastcgi_keep_conn', 'keepConn'),
  duration('fastcgi_connect_timeout', 'connectTimeout'),
  duration('fastcgi_send_timeout', 'sendTimeout'),
  duration('fastcgi_read_timeout', 'readTimeout'),
  flag('fastcgi_intercept_errors', 'interceptErrors'),
  headerList('fastcgi_hide_header', 'hideHeaders'),
  headerList('fastcgi_pass_header', 'passHeaders'),
  {
    name: 'fastcgi_ignore_headers', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const names = parseIgnoreHeaders(d, cx);
      if (names !== null) draftOf(scope).ignoreHeaders = names;
    },
  },
  flag('fastcgi_pass_request_headers', 'passRequestHeaders'),
  flag('fastcgi_pass_request_body', 'passRequestBody'),
  flag('fastcgi_request_buffering', 'requestBuffering'),
  flag('fastcgi_buffering', 'buffering'),
  flag('fastcgi_ignore_client_abort', 'ignoreClientAbort'),
  size('fastcgi_buffer_size', 'bufferSize'),
  {
    name: 'fastcgi_buffers', contexts: HTTP_SERVER_LOCATION, args: TAKE2,
    handle(d, scope, cx) {
      const number = cx.number(d, d.args[0]!);
      const bytes = cx.size(d, d.args[1]!);
      if (number === null || bytes === null) return;
      if (number === 0 || bytes === 0) cx.problem(`"${d.name}" directive invalid value`, d, 'both the number of buffers and their size must be above 0 ("8 4k")');
      else if (number < 2) cx.problem('there must be at least 2 "fastcgi_buffers"', d);
      else draftOf(scope).buffers = { number, size: bytes };
    },
  },
  size('fastcgi_busy_buffers_size', 'busyBuffersSize'),
  size('fastcgi_max_temp_file_size', 'maxTempFileSize'),
  size('fastcgi_temp_file_write_size', 'tempFileWriteSize'),
  {
    name: 'fastcgi_temp_path', contexts: HTTP_SERVER_LOCATION, args: [1, 4],
    handle(d, scope, cx) {
      const path = parseTempPath(d, cx);
      if (path !== null) draftOf(scope).tempPath = path;
    },
  },
  {
    name: 'fastcgi_next_upstream', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const set = parseNextUpstream(d, cx);
      if (set !== null) draftOf(scope).nextUpstream = set;
    },
  },
  {
    name: 'fastcgi_next_upstream_tries', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.number(d, d.args[0]!);
      if (v !== null) draftOf(scope).nextUpstreamTries = v;
    },
  },
  duration('fastcgi_next_upstream_timeout', 'nextUpstreamTimeout'),
];
