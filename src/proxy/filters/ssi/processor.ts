/**
 * The SSI commands (ngx_http_ssi_filter_module's ngx_http_ssi_include, _echo, _set, _config, _if,
 * _elif, _else, _endif, _block, _endblock) run over the tokens of one response body, as an async
 * generator of output bytes: text passes as it comes, an `include` streams its subrequest's body
 * in place. Values are byte strings (latin1), as nginx works on bytes. A failed command logs
 * nginx's message at `error` and outputs `errmsg` unless `ssi_silent_errors` is on.
 */
import type { Readable } from 'node:stream';
import type { Settings } from '../../../config/types.js';
import { compileRegex } from '../../../config/regex.js';
import { escapeHtml, escapeUri, utf8Bytes } from '../../../core/escape.js';
import type { ErrorLog } from '../../../observability/error-log.js';
import { logContext } from '../../context/log-context.js';
import type { RequestContext } from '../../context/request-context.js';
import type { Variables } from '../../context/variables.js';
import { SsiTokenizer, type SsiCommand, type SsiToken } from './parser.js';
import { DEFAULT_TIMEFMT, strftime } from './timefmt.js';

/** What a subrequest answered: its status, its body (null for none), and what made it (a page of Sluice's, a file, an upstream). */
export interface SubResponse {
  readonly status: number;
  readonly body: Readable | null;
  readonly kind: 'local' | 'file' | 'proxied';
  /** The subrequest (a stub is output as its response, processed in its context). */
  readonly ctx: RequestContext;
}

/** Runs `uri` as a subrequest of `parent` through the server's locations; rejects when it cannot start (too deep). */
export type Subrequest = (parent: RequestContext, uri: string, args: string | null) => Promise<SubResponse>;

/** What processing one body needs. */
export interface SsiRun {
  readonly ctx: RequestContext;
  readonly settings: Settings;
  readonly vars: Variables;
  readonly log: ErrorLog;
  readonly subrequest: Subrequest;
}

/** nginx's default `errmsg`. */
const DEFAULT_ERRMSG = '[an error occurred while processing the directive]';
/** subrequest_output_buffer_size's default (one page): the most `include ... set=` keeps. */
const SET_LIMIT = 4096;

/** What the main request and its subrequests share (nginx keeps it in the main request's context). */
interface Shared {
  readonly vars: Map<string, string>;
  readonly blocks: Map<string, string>;
  /** The last `if` regex's captures (`$1`...), kept in the main request's context as nginx does. */
  captures: readonly (string | undefined)[];
}

const SHARED = new WeakMap<RequestContext, Shared>();

function mainOf(ctx: RequestContext): RequestContext {
  let c = ctx;
  while (c.parent !== null) c = c.parent;
  return c;
}

class CommandError extends Error {}

/** The parameters each command takes (ngx_http_ssi_commands), the mandatory ones first. */
const PARAMS: Readonly<Record<string, { readonly known: readonly string[]; readonly mandatory: readonly string[] }>> = {
  include: { known: ['virtual', 'file', 'stub', 'set', 'wait'], mandatory: [] },
  echo: { known: ['var', 'default', 'encoding'], mandatory: ['var'] },
  config: { known: ['errmsg', 'timefmt'], mandatory: [] },
  set: { known: ['var', 'value'], mandatory: ['var', 'value'] },
  if: { known: ['expr'], mandatory: ['expr'] },
  elif: { known: ['expr'], mandatory: ['expr'] },
  else: { known: [], mandatory: [] },
  endif: { known: [], mandatory: [] },
  block: { known: ['name'], mandatory: ['name'] },
  endblock: { known: [], mandatory: [] },
};

type Encoding = 'none' | 'url' | 'entity';

/** nginx's NGX_HTTP_SSI_COND_IF and NGX_HTTP_SSI_COND_ELSE. */
const COND_IF = 1;
const COND_ELSE = 2;

/** One request's SSI state (nginx's ngx_http_ssi_ctx_t). */
class SsiState {
  readonly run: SsiRun;
  readonly shared: Shared;
  errmsg = DEFAULT_ERRMSG;
  timefmt = DEFAULT_TIMEFMT;
  encoding: Encoding = 'entity';
  /** Output is on (false inside a false `if` branch). */
  output = true;
  /** Inside if/elif (COND_IF) or else (COND_ELSE), 0 outside; and whether a branch was taken. */
  conditional = 0;
  chosen = false;
  /** The block being recorded: its name and text. */
  block: { readonly name: string; text: string } | null = null;

  constructor(run: SsiRun) {
    this.run = run;
    const main = mainOf(run.ctx);
    let shared = SHARED.get(main);
    if (shared === undefined) {
      shared = { vars: new Map(), blocks: new Map(), captures: [] };
      SHARED.set(main, shared);
    }
    this.shared = shared;
  }

  logError(message: string): void {
    const { log, ctx } = this.run;
    log.log('error', `${message}${logContext(ctx)}`, ctx.conn.id);
  }

  /** A variable's value as bytes: a regex capture, an SSI variable, `$date_*`, or one of nginx's. */
  variable(name: string): string | undefined {
    if (/^[0-9]$/.test(name)) return this.shared.captures[Number(name)];
    const lower = name.toLowerCase();
    const own = this.shared.vars.get(lower);
    if (own !== undefined) return own;
    if (lower === 'date_local' || lower === 'date_gmt') return strftime(this.timefmt, new Date(), lower === 'date_gmt');
    const v = this.run.vars.get(lower, this.run.ctx);
    return v === undefined ? undefined : utf8Bytes(v);
  }

  /**
   * ngx_http_ssi_evaluate_string: `$name` and `${name}` replaced by their values (empty when not
   * found); a backslash before `\\`, `'`, `"` or `$` is dropped, before anything else kept (so
   * a regex keeps its escapes). A `$` that names nothing is an error, in a regex too.
   */
  evaluate(text: string): string {
    if (!text.includes('$') && !text.includes('\\')) return text;
    let out = '';
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      if (c === '\\' && i + 1 < text.length) {
        const next = text[i + 1] as string;
        if (next !== '\\' && next !== "'" && next !== '"' && next !== '$') out += c;
        out += next;
        i++;
        continue;
      }
      if (c !== '$') {
        out += c;
        continue;
      }
      let name: string;
      if (text[i + 1] === '{') {
        const m = /^[A-Za-z0-9_]*/.exec(text.slice(i + 2)) as RegExpExecArray;
        if (text[i + 2 + m[0].length] !== '}') throw new CommandError(`the closing bracket in "${m[0]}" variable is missing`);
        name = m[0];
        i += m[0].length + 2;
      } else {
        const m = /^[A-Za-z0-9_]*/.exec(text.slice(i + 1)) as RegExpExecArray;
        name = m[0];
        i += name.length;
      }
      if (name === '') throw new CommandError(`invalid variable name in "${text}"`);
      out += this.variable(name) ?? '';
    }
    return out;
  }
}

function paramsOf(command: SsiCommand): Map<string, string> {
  const spec = PARAMS[command.name];
  if (spec === undefined) throw new CommandError(`invalid SSI command: "${command.name}"`);
  const params = new Map<string, string>();
  for (const [name, value] of command.params) {
    if (!spec.known.includes(name)) throw new CommandError(`invalid parameter name: "${name}" of command "${command.name}"`);
    if (params.has(name)) throw new CommandError(`duplicate "${name}" parameter in "${command.name}" SSI command`);
    params.set(name, value);
  }
  for (const m of spec.mandatory) {
    if (!params.has(m)) throw new CommandError(`mandatory "${m}" parameter is absent in "${command.name}" SSI command`);
  }
  return params;
}

function bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** The text of a byte string (for regexes and URIs, which Sluice holds decoded). */
function decoded(text: string): string {
  return /^[\x00-\x7f]*$/.test(text) ? text : Buffer.from(text, 'latin1').toString('utf8');
}

/** ngx_http_ssi_if's expression: `left`, `left = right`, `left != right`, with `/regex/` on the right. */
function test(state: SsiState, expr: string): boolean {
  let p = 0;
  // The left side: a variable or a word (ngx_http_ssi_if stops at the first other character).
  // (nginx lower-cases it in place: `$ARG_A` is `$arg_a`, a word `ABC` is `abc`.)
  while (p < expr.length && /[A-Za-z0-9_${}"']/.test(expr[p] as string)) p++;
  const left = state.evaluate(expr.slice(0, p).toLowerCase());
  while (expr[p] === ' ') p++;
  if (p === expr.length) return left !== '';
  let negative: boolean;
  if (expr[p] === '=') {
    negative = false;
    p++;
  } else if (expr[p] === '!' && expr[p + 1] === '=') {
    negative = true;
    p += 2;
  } else {
    throw new CommandError(`invalid expression in "${expr}"`);
  }
  while (expr[p] === ' ') p++;
  let rest = expr.slice(p);
  let equal: boolean;
  if (rest.length > 1 && rest.startsWith('/')) {
    if (!rest.endsWith('/')) throw new CommandError(`invalid expression in "${expr}"`);
    const source = decoded(state.evaluate(rest.slice(1, -1)));
    const compiled = compileRegex(source, false);
    if (!compiled.ok) throw new CommandError(compiled.message);
    const m = compiled.regex.exec(decoded(left));
    equal = m !== null;
    if (m !== null) {
      state.shared.captures = m.map((v) => (v === undefined ? undefined : utf8Bytes(v)));
      // ngx_http_ssi_regex_match: named captures become SSI variables.
      for (const [name, v] of Object.entries(m.groups ?? {})) state.shared.vars.set(name.toLowerCase(), utf8Bytes(v ?? ''));
    }
  } else {
    // `\/` at the start is a literal slash, not a regex.
    if (rest.startsWith('\\/')) rest = rest.slice(1);
    equal = left === state.evaluate(rest);
  }
  return equal !== negative;
}

/** ngx_http_ssi_if (for elif too): a branch already taken turns output off without a test. */
function ifCommand(state: SsiState, expr: string): void {
  if (state.chosen) state.output = false;
  else {
    state.output = test(state, expr);
    state.chosen = state.output;
  }
  state.conditional = COND_IF;
}

/** echo's `encoding`. */
function encode(value: string, encoding: Encoding): string {
  if (encoding === 'url') return escapeUri(value, 'html');
  if (encoding === 'entity') return escapeHtml(value);
  return value;
}

/**
 * An include's URI (ngx_http_ssi_include): one relative to the current URI's directory, then split
 * at `?` and refused when it climbs out of the root (ngx_http_parse_unsafe_uri).
 */
function includeTarget(state: SsiState, raw: string): { uri: string; args: string | null } {
  let uri = state.evaluate(raw);
  if (!uri.startsWith('/')) {
    const current = utf8Bytes(state.run.ctx.uri);
    uri = current.slice(0, current.lastIndexOf('/') + 1) + uri;
  }
  const q = uri.indexOf('?');
  const args = q === -1 ? null : uri.slice(q + 1);
  let path = q === -1 ? uri : uri.slice(0, q);
  if (path.includes('%')) {
    try {
      path = Buffer.from(decodeURIComponent(decoded(path)), 'utf8').toString('latin1');
    } catch {
      throw new CommandError(`unsafe URI "${uri}" was detected`);
    }
  }
  if (/(^|\/)\.\.?(\/|$)/.test(path) || path.includes('\0')) throw new CommandError(`unsafe URI "${uri}" was detected`);
  return { uri: decoded(path), args: args === null ? null : decoded(args) };
}

async function* include(state: SsiState, params: Map<string, string>): AsyncGenerator<Buffer> {
  const file = params.get('file');
  const virtual = params.get('virtual');
  const stub = params.get('stub');
  const set = params.get('set');
  const wait = params.get('wait');
  if (file !== undefined && virtual !== undefined) throw new CommandError('inclusion may be either virtual="..." or file="..."');
  if (file === undefined && virtual === undefined) throw new CommandError('no parameter in "include" SSI command');
  if (set !== undefined && stub !== undefined) throw new CommandError('"set" and "stub" cannot be used together in "include" SSI command');
  if (wait !== undefined) {
    if (virtual === undefined) throw new CommandError(`"wait" cannot be used with file="${file as string}"`);
    if (!/^(yes|no)$/i.test(wait)) throw new CommandError(`invalid value "${wait}" in the "wait" parameter`);
  }
  let stubText: string | undefined;
  if (stub !== undefined) {
    stubText = state.shared.blocks.get(stub);
    if (stubText === undefined) throw new CommandError(`"stub"="${stub}" for "include" not found`);
  }
  const { uri, args } = includeTarget(state, (file ?? virtual) as string);
  let r: SubResponse;
  try {
    r = await state.run.subrequest(state.run.ctx, uri, args);
  } catch (err) {
    throw new CommandError((err as Error).message);
  }
  if (set !== undefined) {
    // The subrequest's body in memory (nginx 1.13.10+: any response, subrequest_output_buffer_size).
    let value = '';
    if (r.body !== null) {
      for await (const chunk of r.body) {
        value += (chunk as Buffer).toString('latin1');
        if (value.length > SET_LIMIT) {
          r.body.destroy();
          throw new CommandError('too big subrequest response');
        }
      }
    }
    state.shared.vars.set(set.toLowerCase(), value);
    return;
  }
  // ngx_http_ssi_stub_output: the stub stands for a subrequest that output nothing (an error
  // Sluice answers itself included).
  if (stubText !== undefined && (r.body === null || (r.kind === 'local' && r.status >= 300))) {
    r.body?.destroy();
    yield* processText(new SsiState({ ...state.run, ctx: r.ctx }), stubText);
    return;
  }
  if (r.body === null) return;
  let any = false;
  for await (const chunk of r.body) {
    any = true;
    yield chunk as Buffer;
  }
  if (!any && stubText !== undefined) yield* processText(new SsiState({ ...state.run, ctx: r.ctx }), stubText);
}

/** A block's text, processed again (a stub's commands run where it is output). */
async function* processText(state: SsiState, text: string): AsyncGenerator<Buffer> {
  const tokenizer = new SsiTokenizer(state.run.settings.ssi.valueLength);
  const tokens: SsiToken[] = [];
  tokenizer.feed(text, tokens);
  tokenizer.end(tokens);
  yield* handle(state, tokens);
}

async function* command(state: SsiState, c: SsiCommand): AsyncGenerator<Buffer> {
  const params = paramsOf(c);
  switch (c.name) {
    case 'if':
      if (state.conditional !== 0) throw new CommandError('the "if" command inside the "if" command');
      ifCommand(state, params.get('expr') as string);
      return;
    case 'elif':
      // ngx_http_ssi_body_filter: elif and else only after if/elif, endif after any of them.
      if (state.conditional !== COND_IF) throw new CommandError(`invalid context of SSI command: "${c.name}"`);
      ifCommand(state, params.get('expr') as string);
      return;
    case 'else':
      if (state.conditional !== COND_IF) throw new CommandError(`invalid context of SSI command: "${c.name}"`);
      state.output = !state.chosen;
      state.conditional = COND_ELSE;
      return;
    case 'endif':
      if (state.conditional === 0) throw new CommandError(`invalid context of SSI command: "${c.name}"`);
      state.conditional = 0;
      state.chosen = false;
      state.output = true;
      return;
    default:
      break;
  }
  if (!state.output) return;
  switch (c.name) {
    case 'echo': {
      const enc = params.get('encoding');
      if (enc !== undefined) {
        // nginx logs an unknown one and echoes with the encoding it had.
        if (enc !== 'none' && enc !== 'url' && enc !== 'entity') state.logError(`unknown encoding "${enc}" in the "echo" command`);
        else state.encoding = enc;
      }
      const value = state.variable(params.get('var') as string) ?? params.get('default') ?? '(none)';
      if (value !== '') yield bytes(encode(value, state.encoding));
      return;
    }
    case 'set':
      state.shared.vars.set((params.get('var') as string).toLowerCase(), state.evaluate(params.get('value') as string));
      return;
    case 'config': {
      const errmsg = params.get('errmsg');
      const timefmt = params.get('timefmt');
      if (errmsg !== undefined) state.errmsg = errmsg;
      if (timefmt !== undefined) state.timefmt = timefmt;
      return;
    }
    case 'block':
      state.block = { name: params.get('name') as string, text: '' };
      return;
    case 'endblock':
      throw new CommandError('the "endblock" command without the "block" command');
    case 'include':
      yield* include(state, params);
      return;
  }
}

async function* handle(state: SsiState, tokens: readonly SsiToken[]): AsyncGenerator<Buffer> {
  for (const t of tokens) {
    const block = state.block;
    if (block !== null) {
      // A block keeps its text and commands as written, for its stub to output later.
      if (t.kind === 'command' && t.command.name === 'endblock') {
        state.shared.blocks.set(block.name, block.text);
        state.block = null;
      } else if (t.kind === 'command') block.text += t.command.raw;
      else if (t.kind === 'text') block.text += t.text;
      continue;
    }
    if (t.kind === 'text') {
      if (state.output) yield bytes(t.text);
      continue;
    }
    try {
      if (t.kind === 'error') throw new CommandError(t.message);
      yield* command(state, t.command);
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      state.logError(err.message);
      // Even in a branch not taken (a misplaced else), as nginx does.
      if (!state.run.settings.ssi.silentErrors) yield bytes(state.errmsg);
    }
  }
}

/** The processed body of `body`, streamed: what `include` brings in comes in its place. */
export async function* ssiBody(body: Readable, run: SsiRun): AsyncGenerator<Buffer> {
  const state = new SsiState(run);
  const tokenizer = new SsiTokenizer(run.settings.ssi.valueLength);
  const tokens: SsiToken[] = [];
  for await (const chunk of body) {
    tokenizer.feed((chunk as Buffer).toString('latin1'), tokens);
    if (tokens.length === 0) continue;
    const batch = tokens.splice(0);
    yield* handle(state, batch);
  }
  tokenizer.end(tokens);
  yield* handle(state, tokens);
}
