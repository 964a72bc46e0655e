/**
 * Body buffering (ngx_http_core_module and ngx_http_proxy_module): `proxy_request_buffering`,
 * `client_body_temp_path`, `client_body_in_file_only`, `client_body_in_single_buffer`,
 * `proxy_buffers`, `proxy_busy_buffers_size`, `proxy_temp_path`, `proxy_max_temp_file_size`,
 * `proxy_temp_file_write_size`, `proxy_ignore_headers`, `proxy_ignore_client_abort`,
 * `proxy_set_body`, `proxy_method`. The runtime is in src/proxy/body/.
 */
import type { BuildContext } from '../build-context.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { BufferingSettings, TempPath } from '../types.js';
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, TAKE2, parseEnum, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

type Draft = { -readonly [K in keyof BufferingSettings]?: BufferingSettings[K] };

function draftOf(scope: Scope): Draft {
  return (settingsOf(scope).buffering ??= {});
}

/** The upstream headers nginx's proxy_ignore_headers knows (ngx_http_upstream_ignore_headers_masks). */
const IGNORABLE = ['x-accel-redirect', 'x-accel-expires', 'x-accel-limit-rate', 'x-accel-buffering', 'x-accel-charset', 'expires', 'cache-control', 'set-cookie', 'vary'];

/** `proxy_ignore_headers` / `fastcgi_ignore_headers`: the names in lower case. */
export function parseIgnoreHeaders(d: Directive, cx: BuildContext): Set<string> | null {
  const names = new Set<string>();
  for (const a of d.args) {
    const lower = a.toLowerCase();
    if (!IGNORABLE.includes(lower)) {
      cx.problem(`invalid value "${a}" in "${d.name}" directive`, d, 'the headers nginx can ignore are X-Accel-Redirect, X-Accel-Expires, X-Accel-Limit-Rate, X-Accel-Buffering, X-Accel-Charset, Expires, Cache-Control, Set-Cookie and Vary');
      return null;
    }
    names.add(lower);
  }
  return names;
}

function flag(name: string, key: 'requestBuffering' | 'clientBodyInSingleBuffer' | 'ignoreClientAbort'): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) draftOf(scope)[key] = v;
    },
  };
}

function size(name: string, key: 'busyBuffersSize' | 'maxTempFileSize' | 'tempFileWriteSize'): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.size(d, d.args[0]!);
      if (v !== null) draftOf(scope)[key] = v;
    },
  };
}

/**
 * `PATH [L1 [L2 [L3]]]`: levels of 1 or 2 characters (nginx's ngx_conf_set_path_slot); the path
 * is relative to the prefix. Sub-directories are made as files need them, mode 0700 as nginx.
 */
export function parseTempPath(d: Directive, cx: BuildContext): TempPath | null {
  const levels: number[] = [];
  for (const level of d.args.slice(1)) {
    if (level !== '1' && level !== '2') {
      cx.problem(`invalid value "${level}" in "${d.name}" directive`, d, 'a level is 1 or 2 (characters of the file name per directory level)');
      return null;
    }
    levels.push(Number(level));
  }
  return { path: cx.path(d.args[0]!), levels };
}

function tempPath(name: string, key: 'clientBodyTempPath' | 'proxyTempPath' | null): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: [1, 4],
    handle(d, scope, cx) {
      const path = parseTempPath(d, cx);
      if (key !== null && path !== null) draftOf(scope)[key] = path;
    },
  };
}

function setBody(d: Directive, scope: Scope, cx: BuildContext): void {
  const v = cx.complex(d.args[0]!, d);
  if (v !== null) draftOf(scope).proxySetBody = v;
}

function method(d: Directive, scope: Scope, cx: BuildContext): void {
  const v = cx.complex(d.args[0]!, d);
  if (v !== null) draftOf(scope).proxyMethod = v;
}

export const bufferingDirectives: readonly DirectiveSpec[] = [
  flag('proxy_request_buffering', 'requestBuffering'),
  flag('client_body_in_single_buffer', 'clientBodyInSingleBuffer'),
  flag('proxy_ignore_client_abort', 'ignoreClientAbort'),
  {
    name: 'client_body_in_file_only', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseEnum(d, d.args[0]!, ['off', 'on', 'clean'] as const, cx);
      if (v !== null) draftOf(scope).clientBodyInFileOnly = v;
    },
  },
  tempPath('client_body_temp_path', 'clientBodyTempPath'),
  tempPath('proxy_temp_path', 'proxyTempPath'),
  // Modules Sluice does not have: checked as nginx checks them, nothing is written there.
  tempPath('uwsgi_temp_path', null),
  tempPath('scgi_temp_path', null),
  {
    name: 'proxy_buffers', contexts: HTTP_SERVER_LOCATION, args: TAKE2,
    handle(d, scope, cx) {
      const number = cx.number(d, d.args[0]!);
      const bytes = cx.size(d, d.args[1]!);
      if (number === null || bytes === null) return;
      if (number === 0 || bytes === 0) cx.problem(`"${d.name}" directive invalid value`, d, 'both the number of buffers and their size must be above 0 ("8 4k")');
      else if (number < 2) cx.problem('there must be at least 2 "proxy_buffers"', d);
      else draftOf(scope).proxyBuffers = { number, size: bytes };
    },
  },
  size('proxy_busy_buffers_size', 'busyBuffersSize'),
  size('proxy_max_temp_file_size', 'maxTempFileSize'),
  size('proxy_temp_file_write_size', 'tempFileWriteSize'),
  {
    name: 'proxy_ignore_headers', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const names = parseIgnoreHeaders(d, cx);
      if (names !== null) draftOf(scope).ignoreHeaders = names;
    },
  },
  { name: 'proxy_set_body', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: setBody },
  { name: 'proxy_method', contexts: HTTP_SERVER_LOCATION, args: TAKE1, handle: method },
];
