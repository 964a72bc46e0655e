/**
 * Runs one level's rewrite script (RewriteStep in config/types.ts) for a request, as nginx's script
 * engine does in the server and location rewrite phases: the lines in file order, `if` bodies
 * inline, a true `if` in a location switching the request to that block's configuration (the last
 * true one wins), `rewrite` changing `$uri`/`$args` and the regex captures, `return` and redirects
 * ending the request, and `break`/`last` ending the script. What follows (a new location search
 * when the URI changed) is the caller's (server-routes.ts), which reads `ctx.uriChanged`.
 */
import { parseSize } from '../config/units.js';
import { statSync } from 'node:fs';
import { constantValue } from '../config/complex-value.js';
import type { ComplexValue, LocationConfig, RewriteCondition, RewriteRule, RewriteStep, Settings } from '../config/types.js';
import { errnoCode, errnoSuffix } from '../core/errno.js';
import { escapeUri, utf8Bytes } from '../core/escape.js';
import type { ErrorLog } from '../observability/error-log.js';
import { logContext } from '../proxy/context/log-context.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import type { Variables } from '../proxy/context/variables.js';
import type { RouteDecision } from './decision.js';
import { originForm } from './uri.js';

/** What the rewrite phases need from the runtime: the variables and the error logs. */
export interface ScriptHost {
  readonly vars: Variables;
  errorLog(settings: Settings | null): ErrorLog;
}

/** The script ended (by `break`, `last`, `rewrite ... break`) before its last line. */
const STOP = 1;
/** The script ran to its last line. */
const NEXT = 0;

type StepResult = typeof STOP | typeof NEXT | RouteDecision;

const NO_CAPTURES: readonly (string | undefined)[] = Object.freeze([]);

/** One script run: the request, the runtime and whether `rewrite_log` is on for the script's level. */
interface Run {
  readonly ctx: RequestContext;
  readonly host: ScriptHost;
  readonly log: boolean;
}

function notice(run: Run, message: string): void {
  const { ctx, host } = run;
  host.errorLog(ctx.settings).log('notice', `${message}${logContext(ctx)}`, ctx.conn.id);
}

function internalError(run: Run, message: string | undefined): RouteDecision {
  const settings = run.ctx.settings as Settings;
  return message === undefined ? { kind: 'error', settings, status: 500 } : { kind: 'error', settings, status: 500, log: message };
}

/** A regex of `rewrite` or of an `if` condition: a match replaces the captures, a miss clears the numbered ones. */
function match(run: Run, regex: RegExp, source: string, line: string): boolean {
  const { ctx } = run;
  const m = regex.exec(line);
  if (run.log) notice(run, `"${source}" ${m === null ? 'does not match' : 'matches'} "${line}"`);
  if (m === null) {
    ctx.captures = NO_CAPTURES;
    return false;
  }
  ctx.captures = m;
  if (m.groups !== undefined) ctx.namedCaptures = { ...ctx.namedCaptures, ...m.groups };
  return true;
}

/**
 * nginx's file tests (ngx_http_script_file_code), with stat() as nginx's open_file_cache makes
 * it; like nginx's, the call blocks. Errors other than "not found" are logged at crit.
 */
function fileTest(run: Run, c: RewriteCondition & { readonly kind: 'file' }): boolean {
  const path = run.host.vars.evaluate(c.path, run.ctx);
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ENAMETOOLONG') {
      run.host.errorLog(run.ctx.settings).log('crit', `stat() "${path}" failed ${errnoSuffix(err)}${logContext(run.ctx)}`, run.ctx.conn.id);
    }
    return c.negate;
  }
  let found: boolean;
  switch (c.test) {
    case 'f': found = st.isFile(); break;
    case 'd': found = st.isDirectory(); break;
    case 'e': found = true; break;
    // ngx_is_exec: the owner's execute bit.
    case 'x': found = (st.mode & 0o100) !== 0; break;
  }
  return found !== c.negate;
}

function condition(run: Run, c: RewriteCondition): boolean {
  const { ctx, host } = run;
  switch (c.kind) {
    case 'value': {
      const v = host.vars.evaluate(c.value, ctx);
      return v !== '' && v !== '0';
    }
    case 'compare':
      return (host.vars.evaluate(c.value, ctx) === host.vars.evaluate(c.other, ctx)) !== c.negate;
    case 'regex':
      return match(run, c.regex, c.source, host.vars.evaluate(c.value, ctx)) !== c.negate;
    case 'file':
      return fileTest(run, c);
  }
}

/** nginx's r->quoted_uri || r->plus_in_uri: the path as the client sent it has a "%" or a "+". */
function quotedUri(ctx: RequestContext): boolean {
  const target = originForm(ctx.rawUri);
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  return path.includes('%') || path.includes('+');
}

/**
 * A replacement's value; with `escape` (a redirect, or the arguments of an internal rewrite, of a
 * request whose URI was escaped) the captures are escaped again as arguments, as
 * ngx_http_script_copy_capture_code does.
 */
function replacement(value: ComplexValue, ctx: RequestContext, vars: Variables, escape: boolean): string {
  if (!escape || value.constant !== null) return vars.evaluate(value, ctx);
  let out = '';
  for (const p of value.parts) {
    if ('text' in p) out += p.text;
    else if (p.variable.length === 1 && p.variable >= '1' && p.variable <= '9') out += escapeUri(utf8Bytes(ctx.captures[Number(p.variable)] ?? ''), 'args');
    else out += vars.getter(p.variable)(ctx) ?? '';
  }
  return out;
}

function hexValue(ch: string): number {
  const c = ch.charCodeAt(0) | 0x20;
  if (ch >= '0' && ch <= '9') return ch.charCodeAt(0) - 48;
  return c >= 0x61 && c <= 0x66 ? c - 0x61 + 10 : -1;
}

/**
 * ngx_unescape_uri with NGX_UNESCAPE_REDIRECT over a redirect's URL: up to its first "?", a `%XX`
 * of a printable character above "%" is decoded, any other stays as written; an invalid escape
 * loses its "%" (and a second invalid digit both).
 */
function unescapeRedirect(url: string): string {
  if (!url.includes('%')) return url;
  let out = '';
  for (let i = 0; i < url.length; i++) {
    const ch = url[i]!;
    if (ch === '?') return out + url.slice(i);
    if (ch !== '%') {
      out += ch;
      continue;
    }
    const first = url[i + 1];
    if (first === undefined) return out;
    const high = hexValue(first);
    if (high === -1) {
      out += first;
      i++;
      continue;
    }
    const second = url[i + 2];
    if (second === undefined) return out;
    const low = hexValue(second);
    i += 2;
    if (low === -1) continue;
    const code = high * 16 + low;
    if (code === 0x3f && !(second >= '0' && second <= '9')) return `${out}?${url.slice(i + 1)}`;
    out += code > 0x25 && code < 0x7f ? String.fromCharCode(code) : `%${first}${second}`;
  }
  return out;
}

/** `rewrite`: ngx_http_script_regex_start_code and _end_code. */
function rewrite(run: Run, r: RewriteRule): StepResult {
  const { ctx, host } = run;
  if (!match(run, r.regex, r.source, ctx.uri)) return NEXT;
  if (r.status !== 0) {
    let url = unescapeRedirect(replacement(r.uri, ctx, host.vars, quotedUri(ctx)));
    if (r.addArgs && ctx.args !== '') url += (r.urlHasArgs ? '&' : '?') + ctx.args;
    if (run.log) notice(run, `rewritten redirect: "${url}"`);
    return { kind: 'return', settings: ctx.settings as Settings, action: { code: r.status, text: constantValue(url) } };
  }
  ctx.internal = true;
  ctx.unparsedUri = false;
  if (r.breakCycle) {
    ctx.validLocation = false;
    ctx.uriChanged = false;
  } else {
    ctx.uriChanged = true;
  }
  const uri = host.vars.evaluate(r.uri, ctx);
  if (r.args !== null) {
    let args = replacement(r.args, ctx, host.vars, quotedUri(ctx));
    if (r.addArgs && ctx.args !== '') args += `&${ctx.args}`;
    ctx.args = args;
    ctx.hasArgs = true;
  } else if (!r.addArgs) {
    ctx.args = '';
  }
  if (run.log) notice(run, `rewritten data: "${uri}", args: "${ctx.args}"`);
  if (uri === '') return internalError(run, 'the rewritten URI has a zero length');
  ctx.uri = uri;
  return r.stop ? STOP : NEXT;
}

/**
 * Runs `steps`; `owner` is the location whose script it is (null for a server's), whose
 * `locations` hold the levels of its `if` blocks.
 */
function runSteps(run: Run, steps: readonly RewriteStep[], owner: LocationConfig | null): StepResult {
  const { ctx, host } = run;
  for (const step of steps) {
    switch (step.op) {
      case 'set': {
        const value = host.vars.evaluate(step.value, ctx);
        if (step.index === -1) {
          // ngx_http_variable_set_args: the arguments change, and the client's target no longer names them.
          ctx.args = value;
          ctx.hasArgs = true;
          ctx.unparsedUri = false;
        } else if (step.index === -2) {
          // ngx_http_variable_request_set_size: `set $limit_rate 10k;` paces this response; a value
          // that is no size changes nothing (nginx logs it and goes on).
          const size = parseSize(value);
          if (size !== null) ctx.limitRate = size;
        } else {
          (ctx.setValues ??= [])[step.index] = value;
        }
        break;
      }
      case 'rewrite': {
        const r = rewrite(run, step);
        if (r !== NEXT) return r;
        break;
      }
      case 'return':
        return { kind: 'return', settings: ctx.settings as Settings, action: step.action };
      case 'break':
        // ngx_http_script_break_code: a changed URI stays in this location.
        if (ctx.uriChanged) {
          ctx.validLocation = false;
          ctx.uriChanged = false;
        }
        return STOP;
      case 'if': {
        if (!condition(run, step.condition)) break;
        const level = step.level === null || owner === null ? undefined : owner.locations[step.level];
        if (level !== undefined) {
          ctx.location = level;
          ctx.settings = level.settings;
        }
        const r = runSteps(run, step.steps, owner);
        if (r !== NEXT) return r;
        break;
      }
    }
  }
  return NEXT;
}

/**
 * Runs a level's script. Returns the decision when it answers (return, redirect, 500), else null:
 * the request goes on, to a new location search when `ctx.uriChanged` is set.
 */
export function runScript(script: readonly RewriteStep[], owner: LocationConfig | null, ctx: RequestContext, host: ScriptHost): RouteDecision | null {
  const run: Run = { ctx, host, log: (ctx.settings as Settings).rewrite.log };
  const r = runSteps(run, script, owner);
  return typeof r === 'number' ? null : r;
}
