/**
 * Main and events context (ngx_core_module, ngx_events_module, ngx_http_module's `http`), plus
 * `error_log`, which nginx accepts at every level.
 */
import type { BuildContext } from '../build-context.js';
import type { HttpDraft, Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import { checkLogDirectory } from '../log-directory.js';
import { parseSyslog } from '../syslog.js';
import type { ErrorLogTarget, LogLevel, SyslogTarget } from '../types.js';
import { NOARGS, TAKE1, TAKE12, settingsOf, type DirectiveSpec } from './table.js';
import { MAIN_DEFAULTS } from '../defaults.js';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'notice', 'warn', 'error', 'crit', 'alert', 'emerg'];

function parseErrorLog(d: Directive, cx: BuildContext): ErrorLogTarget | null {
  const file = d.args[0]!;
  if (file.startsWith('memory:')) {
    cx.problem(`unsupported error log target "${file}"`, d, 'the memory error log (a debugging aid of nginx) is not implemented in Sluice; log to a file, stderr or syslog:');
    return null;
  }
  let syslog: SyslogTarget | undefined;
  if (file.startsWith('syslog:')) {
    const r = parseSyslog(file);
    if (!r.ok) {
      cx.problem(r.error, d, r.hint);
      return null;
    }
    syslog = r.target;
  }
  let level: LogLevel = 'error';
  if (d.args.length === 2) {
    const text = d.args[1]!;
    if (!(LOG_LEVELS as readonly string[]).includes(text)) {
      cx.problem(`invalid log level "${text}"`, d, `use one of ${LOG_LEVELS.join(', ')}`);
      return null;
    }
    level = text as LogLevel;
  }
  if (syslog !== undefined) return { path: file, level, syslog };
  const path = file === 'stderr' || file === '/dev/stderr' ? 'stderr' : cx.path(file);
  if (path !== 'stderr') checkLogDirectory(path, d, cx);
  return { path, level };
}

export const coreDirectives: readonly DirectiveSpec[] = [
  {
    name: 'worker_processes', contexts: ['main'], args: TAKE1,
    handle(d, scope, cx) {
      const v = d.args[0]!;
      if (v === 'auto') {
        scope.main.workerProcesses = 'auto';
        return;
      }
      const n = /^[0-9]+$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < 1) {
        cx.problem('"worker_processes" directive invalid value', d, 'use a number of processes (1 or more) or "auto"');
        return;
      }
      scope.main.workerProcesses = n;
    },
  },
  {
    name: 'worker_shutdown_timeout', contexts: ['main'], args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.duration(d, d.args[0]!);
      if (v !== null) scope.main.workerShutdownTimeout = v;
    },
  },
  {
    name: 'websocket_drain_timeout', contexts: ['http'], args: TAKE12,
    handle(d, scope, cx) {
      if (d.args[0] === 'off') {
        if (d.args.length > 1) cx.problem('invalid number of arguments in "websocket_drain_timeout" directive', d, '"off" takes no jitter');
        else scope.main.websocketDrain = null;
        return;
      }
      const timeout = cx.duration(d, d.args[0]!);
      const jitter = d.args[1] === undefined ? MAIN_DEFAULTS.websocketDrainJitter : cx.duration(d, d.args[1]);
      if (timeout !== null && jitter !== null) scope.main.websocketDrain = { timeout, jitter };
    },
  },
  {
    name: 'pid', contexts: ['main'], args: TAKE1,
    handle(d, scope, cx) {
      scope.main.pid = cx.path(d.args[0]!);
    },
  },
  {
    name: 'error_log', contexts: ['main', 'http', 'server', 'location'], args: TAKE12, repeatable: true,
    handle(d, scope, cx) {
      const target = parseErrorLog(d, cx);
      if (target === null) return;
      if (scope.context === 'main') {
        (scope.main.errorLogs ??= []).push(target);
      } else {
        (settingsOf(scope).errorLogs ??= []).push(target);
      }
    },
  },
  {
    name: 'events', contexts: ['main'], args: NOARGS, block: 'children',
    handle(_d, scope): Scope {
      scope.main.events = {};
      return { ...scope, context: 'events' };
    },
  },
  {
    name: 'worker_connections', contexts: ['events'], args: TAKE1,
    handle(d, scope, cx) {
      const n = cx.number(d, d.args[0]!);
      if (n === null) return;
      if (n < 1) {
        cx.problem('"worker_connections" directive invalid value', d, 'use 1 or more');
        return;
      }
      scope.main.events!.workerConnections = n;
    },
  },
  {
    name: 'http', contexts: ['main'], args: NOARGS, block: 'children',
    handle(_d, scope): Scope {
      const http: HttpDraft = { upstreams: [], matches: new Map(), maps: [], logFormats: new Map(), cacheZones: new Map(), servers: [], settings: {}, limitZones: new Map(), limitRefs: [] };
      scope.main.http = http;
      return { ...scope, context: 'http', http, settings: http.settings };
    },
  },
];
