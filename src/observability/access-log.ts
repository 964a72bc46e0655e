import type { AccessLogTarget, ComplexValue, LogFormat } from '../config/types.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import type { Variables, VariableGetter } from '../proxy/context/variables.js';
import type { LogFiles, LogSink } from './log-files.js';
import type { ErrorLog } from './error-log.js';
import { logContext } from '../proxy/context/log-context.js';

type Piece = string | VariableGetter;

interface CompiledFormat {
  readonly pieces: readonly Piece[];
  readonly escape: LogFormat['escape'];
  /** The variables it reads. */
  readonly names: readonly string[];
}

/** nginx's default escaping: `"`, `\`, control and non-ASCII bytes become \xHH. */
function escapeDefault(s: string): string {
  const bytes = Buffer.from(s, 'utf8');
  let out = '';
  for (const b of bytes) {
    out += b === 0x22 || b === 0x5c || b < 0x20 || b > 0x7e ? `\\x${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

function escapeJson(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

/** Writes access log lines with compiled formats; variables are read once per line. */
export class AccessLog {
  readonly #formats = new Map<string, CompiledFormat>();
  readonly #files: LogFiles;
  readonly #sinks = new Map<AccessLogTarget, LogSink>();

  constructor(formats: ReadonlyMap<string, LogFormat>, files: LogFiles, vars: Variables) {
    this.#files = files;
    for (const [name, f] of formats) this.#formats.set(name, { pieces: compile(f.format, vars), escape: f.escape, names: variableNames(f.format) });
  }

  /** The variables the lines of `targets` read: their formats, conditions and file names. */
  variablesOf(targets: readonly AccessLogTarget[]): string[] {
    const names: string[] = [];
    for (const t of targets) {
      names.push(...(this.#formats.get(t.format)?.names ?? []));
      if (t.condition !== null) names.push(...variableNames(t.condition));
      if (t.pathValue !== null) names.push(...variableNames(t.pathValue));
    }
    return names;
  }

  /** One line per target; `errors` gets what nginx logs when a variable-path file cannot be opened. */
  write(ctx: RequestContext, targets: readonly AccessLogTarget[], vars: Variables, errors?: ErrorLog): void {
    for (const t of targets) {
      if (t.condition) {
        const c = vars.evaluate(t.condition, ctx);
        if (c === '' || c === '0') continue;
      }
      const fmt = this.#formats.get(t.format);
      if (!fmt) continue;
      const line = render(fmt, ctx) + '\n';
      if (t.pathValue !== null) {
        this.#writeVariable(ctx, t.pathValue, line, vars, errors);
        continue;
      }
      let sink = this.#sinks.get(t);
      if (!sink) {
        sink = t.syslog !== null ? this.#files.syslogSink(t.syslog) : this.#files.sink(t.path, t.buffer);
        this.#sinks.set(t, sink);
      }
      sink.write(line);
    }
  }

  /**
   * A log whose file name has variables. A name that comes out with a ".." segment or a NUL byte
   * is not written (a request must not choose where files go).
   */
  #writeVariable(ctx: RequestContext, value: ComplexValue, line: string, vars: Variables, errors?: ErrorLog): void {
    const path = vars.evaluate(value, ctx);
    if (path.includes('\0') || /(^|\/)\.\.(\/|$)/.test(path)) {
      errors?.log('error', `access log file name "${path}" is refused: it has a ".." segment or a NUL byte${logContext(ctx)}`, ctx.conn.id);
      return;
    }
    this.#files.writeVariable(path, line, ctx.settings?.core.openLogFileCache ?? null, (message) => {
      errors?.log('crit', `${message} while logging request${logContext(ctx)}`, ctx.conn.id);
    });
  }
}

function variableNames(v: ComplexValue): string[] {
  return v.parts.flatMap((p) => ('text' in p ? [] : [p.variable]));
}

function compile(v: ComplexValue, vars: Variables): Piece[] {
  return v.parts.map((p) => ('text' in p ? p.text : vars.getter(p.variable)));
}

function render(fmt: CompiledFormat, ctx: RequestContext): string {
  let line = '';
  for (const p of fmt.pieces) {
    if (typeof p === 'string') {
      line += p;
      continue;
    }
    const v = p(ctx);
    if (fmt.escape === 'json') line += v === undefined ? '' : escapeJson(v);
    else if (v === undefined || v === '') line += v === undefined ? '-' : '';
    else line += fmt.escape === 'none' ? v : escapeDefault(v);
  }
  return line;
}
