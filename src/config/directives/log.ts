/** ngx_http_log_module: `log_format` and `access_log`. */
import { locOf } from '../build-context.js';
import { compileComplexValue } from '../complex-value.js';
import type { ComplexValue, LogFormat } from '../types.js';
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

const PLANNED_ACCESS_LOG_PARAMS = ['buffer', 'flush', 'gzip'];

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
      if (path.startsWith('syslog:')) {
        cx.problem(`unsupported access log target "${path}"`, d,
          'syslog logging is not implemented in Sluice; log to a file, /dev/stdout or /dev/stderr');
        return;
      }
      if (path.includes('$')) {
        cx.problem(`variables in the "access_log" path are not supported "${path}"`, d, 'write a fixed file name');
        return;
      }
      let condition: ComplexValue | null = null;
      for (const param of d.args.slice(2)) {
        if (param.startsWith('if=')) {
          condition = cx.complex(param.slice(3), d);
          if (condition === null) return;
          continue;
        }
        const pname = param.split('=')[0]!;
        if (PLANNED_ACCESS_LOG_PARAMS.includes(pname)) {
          cx.problem(`the "${pname}" parameter of the "access_log" directive is not implemented`, d,
            `Sluice writes each entry as it happens; remove "${param}"`);
        } else {
          cx.problem(`invalid parameter "${param}"`, d, 'access_log takes PATH [FORMAT [if=CONDITION]]');
        }
        return;
      }
      const target = path === '/dev/stdout' ? 'stdout' : path === '/dev/stderr' ? 'stderr' : cx.path(path);
      (settings.accessLogs ??= []).push({ path: target, format: d.args[1] ?? 'combined', condition, loc: locOf(d) });
    },
  },
];
