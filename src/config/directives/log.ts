/** ngx_http_log_module: `log_format` and `access_log`. */
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import { compileComplexValue } from '../complex-value.js';
import type { Directive } from '../parser.js';
import { checkLogDirectory } from '../log-directory.js';
import { parseSyslog } from '../syslog.js';
import type { AccessLogBuffer, ComplexValue, LogFormat, OpenLogFileCache, SyslogTarget } from '../types.js';
import { parseDuration, parseNumber, parseSize } from '../units.js';
import { coreOf } from './http-flags.js';
import { ONE_OR_MORE, TWO_OR_MORE, HTTP_SERVER_LOCATION, settingsOf, type DirectiveSpec } from './table.js';

/** nginx's predefined format, which may not be redefined. */
export const COMBINED_FORMAT =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';

export function combinedLogFormat(): LogFormat {
  const compiled = compileComplexValue(COMBINED_FORMAT);
  if (!compiled.ok) throw new Error('the combined log format does not compile');
  return { name: 'combined', escape: 'default', format: compiled.value };
}

const ESCAPES = ['default', 'json', 'none'] as const;

/** Per load: the buffering each buffered log file was given first (nginx shares one buffer per file). */
const buffers = new WeakMap<BuildContext, Map<string, AccessLogBuffer>>();

/** The parameters after FORMAT (ngx_http_log_set_log): buffer=, flush=, gzip[=N], if=. */
function accessLogParams(d: Directive, params: readonly string[], cx: BuildContext): { buffer: AccessLogBuffer | null; condition: ComplexValue | null } | null {
  let size = 0;
  let flush = 0;
  let gzip = 0;
  let condition: ComplexValue | null = null;
  const fail = (message: string, hint: string): null => {
    cx.problem(message, d, hint);
    return null;
  };
  for (const param of params) {
    if (param.startsWith('buffer=')) {
      const v = parseSize(param.slice('buffer='.length));
      if (v === null) return fail(`invalid buffer size "${param.slice('buffer='.length)}"`, 'a size such as "32k" or "1m"');
      size = v;
    } else if (param.startsWith('flush=')) {
      const v = parseDuration(param.slice('flush='.length));
      if (v === null || v === 0) return fail(`invalid flush time "${param.slice('flush='.length)}"`, 'a time such as "5s" or "1m"');
      flush = v;
    } else if (param === 'gzip' || param.startsWith('gzip=')) {
      // nginx: gzip without buffer= buffers 64k.
      if (size === 0) size = 64 * 1024;
      if (param === 'gzip') {
        gzip = 1;
        continue;
      }
      const level = parseNumber(param.slice('gzip='.length));
      if (level === null || level < 1 || level > 9) return fail(`invalid compression level "${param.slice('gzip='.length)}"`, 'gzip levels are 1 (fastest) to 9');
      gzip = level;
    } else if (param.startsWith('if=')) {
      condition = cx.complex(param.slice(3), d);
      if (condition === null) return null;
    } else {
      return fail(`invalid parameter "${param}"`, 'access_log takes PATH [FORMAT [buffer=SIZE] [gzip[=LEVEL]] [flush=TIME] [if=CONDITION]]');
    }
  }
  return { buffer: size === 0 ? (flush === 0 ? null : { size: 0, flush, gzip }) : { size, flush, gzip }, condition };
}

/** open_log_file_cache's parameters (ngx_http_log_open_file_cache); null for `off`, undefined after a problem. */
function openLogFileCache(d: Directive, cx: BuildContext): OpenLogFileCache | null | undefined {
  let max = 0;
  let inactive = 10_000;
  let minUses = 1;
  let valid = 60_000;
  let off = false;
  for (const v of d.args) {
    const bad = (): undefined => void cx.problem(`invalid "open_log_file_cache" parameter "${v}"`, d,
      'open_log_file_cache takes max=N [inactive=TIME] [min_uses=N] [valid=TIME], or off');
    if (v.startsWith('max=')) {
      const n = parseNumber(v.slice(4));
      if (n === null) return bad();
      max = n;
    } else if (v.startsWith('inactive=') || v.startsWith('valid=')) {
      const t = parseDuration(v.slice(v.indexOf('=') + 1), true);
      if (t === null) return bad();
      if (v.startsWith('inactive=')) inactive = t;
      else valid = t;
    } else if (v.startsWith('min_uses=')) {
      const n = parseNumber(v.slice(9));
      if (n === null) return bad();
      minUses = n;
    } else if (v === 'off') {
      off = true;
    } else {
      return bad();
    }
  }
  if (off) return null;
  if (max === 0) return void cx.problem('"open_log_file_cache" must have "max" parameter', d, 'e.g. "open_log_file_cache max=100 inactive=20s;"');
  return { max, inactive, minUses, valid };
}

export const logDirectives: readonly DirectiveSpec[] = [
  {
    name: 'log_format', contexts: ['http'], args: TWO_OR_MORE, repeatable: true,
    handle(d, scope, cx) {
      const http = scope.http!;
      const name = d.args[0]!;
      let rest = d.args.slice(1);
      let escape: LogFormat['escape'] = 'default';
      if (rest[0]!.startsWith('escape=')) {
        const value = rest[0]!.slice('escape='.length);
        if (!(ESCAPES as readonly string[]).includes(value)) {
          cx.problem(`unknown log format escaping "${value}"`, d, 'use escape=default, escape=json or escape=none');
          return;
        }
        escape = value as LogFormat['escape'];
        rest = rest.slice(1);
        if (rest.length === 0) {
          cx.problem('invalid number of arguments in "log_format" directive', d);
          return;
        }
      }
      if (name === 'combined' || http.logFormats.has(name)) {
        cx.problem(`duplicate "log_format" name "${name}"`, d,
          name === 'combined' ? '"combined" is predefined; give your format another name' : undefined);
        return;
      }
      const format: ComplexValue | null = cx.complex(rest.join(''), d);
      if (format === null) return;
      http.logFormats.set(name, { name, escape, format });
    },
  },
  {
    name: 'access_log', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true,
    handle(d, scope, cx) {
      const settings = settingsOf(scope);
      const path = d.args[0]!;
      if (path === 'off') {
        if (d.args.length > 1) {
          cx.problem(`invalid parameter "${d.args[1]!}"`, d, '"access_log off" takes no other parameters');
          return;
        }
        settings.accessLogOff = true;
        settings.accessLogs ??= [];
        return;
      }
      let syslog: SyslogTarget | null = null;
      let pathValue: ComplexValue | null = null;
      if (path.startsWith('syslog:')) {
        const r = parseSyslog(path);
        if (!r.ok) return void cx.problem(r.error, d, r.hint);
        syslog = r.target;
      } else if (path.includes('$')) {
        // Relative paths start at the prefix, evaluated or not (ngx_conf_full_name).
        pathValue = cx.complex(path.startsWith('/') ? path : `${cx.prefix}/${path}`, d);
        if (pathValue === null) return;
      }
      const params = accessLogParams(d, d.args.slice(2), cx);
      if (params === null) return;
      const { buffer, condition } = params;
      if (buffer !== null) {
        if (buffer.size === 0) return void cx.problem(`no buffer is defined for access_log "${path}"`, d, 'flush= needs buffer= (or gzip)');
        if (pathValue !== null) return void cx.problem('buffered logs cannot have variables in name', d, 'drop buffer=, flush= and gzip, or write a fixed file name');
        if (syslog !== null) return void cx.problem('logs to syslog cannot be buffered', d, 'drop buffer=, flush= and gzip for a syslog: target');
      }
      const target = syslog !== null || pathValue !== null ? path : path === '/dev/stdout' ? 'stdout' : path === '/dev/stderr' ? 'stderr' : cx.path(path);
      if (syslog === null && pathValue === null && target !== 'stdout' && target !== 'stderr') checkLogDirectory(target, d, cx);
      if (buffer !== null) {
        let known = buffers.get(cx);
        if (known === undefined) buffers.set(cx, known = new Map());
        const first = known.get(target);
        if (first !== undefined && (first.size !== buffer.size || first.flush !== buffer.flush || first.gzip !== buffer.gzip)) {
          return void cx.problem(`access_log "${path}" already defined with conflicting parameters`, d, 'every buffered access_log to one file must give the same buffer=, flush= and gzip');
        }
        known.set(target, buffer);
      }
      (settings.accessLogs ??= []).push({ path: target, pathValue, format: d.args[1] ?? 'combined', condition, buffer, syslog, loc: locOf(d) });
    },
  },
  {
    name: 'open_log_file_cache', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const v = openLogFileCache(d, cx);
      if (v !== undefined) coreOf(scope).openLogFileCache = v;
    },
  },
];
