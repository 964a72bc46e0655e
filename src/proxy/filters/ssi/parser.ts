/**
 * The SSI tokenizer: nginx's ngx_http_ssi_parse as a state machine fed one chunk at a time, so a
 * command split across reads (or a body of any size) is parsed without holding the body: text is
 * handed on as it comes, only a possible start of `<!--#` at a chunk's end and the command being
 * read are kept (bounded by nginx's limits: 31-byte names, 16 parameters, `ssi_value_length`).
 * Chunks are byte strings (latin1, one char per byte), as nginx sees bytes.
 */

/** One SSI command as written: `<!--# name param="value" ... -->`. */
export interface SsiCommand {
  readonly name: string;
  readonly params: readonly (readonly [string, string])[];
  /** The command's text as it came (what a `block` keeps). */
  readonly raw: string;
}

/** What the tokenizer found: text to pass on, a command, or a malformed command (its message for the error log). */
export type SsiToken =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'command'; readonly command: SsiCommand }
  | { readonly kind: 'error'; readonly message: string };

/** nginx's NGX_HTTP_SSI_COMMAND_LEN and NGX_HTTP_SSI_PARAM_LEN. */
const NAME_LEN = 31;
/** NGX_HTTP_SSI_MAX_PARAMS. */
const MAX_PARAMS = 16;
const START = '<!--#';

const enum S {
  Text, PreCommand, Command, PreParam, Param, PreEqual, PreValue, Value, QuotedSymbol, PostParam, End0, End1,
  /** After a malformed command: nginx skips to its `-->`. */
  Error, ErrorEnd0, ErrorEnd1,
}

function space(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

export class SsiTokenizer {
  readonly #valueLength: number;
  #state = S.Text;
  /** How much of `<!--#` the text so far ends with (held back). */
  #matched = 0;
  #raw = '';
  #name = '';
  #params: [string, string][] = [];
  #param = '';
  #value = '';
  #quote = '';
  #error = '';

  constructor(valueLength: number) {
    this.#valueLength = valueLength;
  }

  /** Tokens in `chunk` (a byte string), in order; what may continue in the next chunk is kept. */
  feed(input: string, out: SsiToken[]): void {
    // A start of `<!--#` held back from the last chunk is scanned again with this one.
    const chunk = this.#matched > 0 ? START.slice(0, this.#matched) + input : input;
    this.#matched = 0;
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as string;
      if (this.#state === S.Text) {
        if (c === START[this.#matched]) {
          if (++this.#matched === START.length) {
            const start = i - (START.length - 1);
            if (start > from) out.push({ kind: 'text', text: chunk.slice(from, start) });
            this.#begin();
          }
        } else {
          // `<!--#` does not overlap itself: only a new `<` can start it again.
          this.#matched = c === '<' ? 1 : 0;
        }
        continue;
      }
      this.#raw += c;
      this.#step(c, out);
      if ((this.#state as S) === S.Text) from = i + 1;
    }
    if (this.#state === S.Text) {
      const end = chunk.length - this.#matched;
      if (end > from) out.push({ kind: 'text', text: chunk.slice(from, end) });
    }
  }

  /** The body ended: a command left open is an error, held-back text goes out. */
  end(out: SsiToken[]): void {
    // An unfinished command at the end of the body is dropped, as nginx drops it.
    if (this.#state === S.Text && this.#matched > 0) out.push({ kind: 'text', text: START.slice(0, this.#matched) });
    this.#matched = 0;
    this.#state = S.Text;
  }

  #begin(): void {
    this.#state = S.PreCommand;
    this.#matched = 0;
    this.#raw = START;
    this.#name = '';
    this.#params = [];
  }

  #fail(message: string): void {
    this.#error = message;
    this.#state = S.Error;
  }

  #step(c: string, out: SsiToken[]): void {
    switch (this.#state) {
      case S.PreCommand:
        if (space(c)) return;
        this.#state = S.Command;
        this.#name = c;
        return;
      case S.Command:
        if (space(c)) this.#state = S.PreParam;
        else if (c === '-') this.#state = S.End0;
        else if (this.#name.length === NAME_LEN) this.#fail(`the "${this.#name}${c}..." SSI command is too long`);
        else this.#name += c;
        return;
      case S.PreParam:
        if (space(c)) return;
        if (c === '-') {
          this.#state = S.End0;
          return;
        }
        if (this.#params.length === MAX_PARAMS) {
          this.#fail(`too many SSI command parameters: "${this.#name}"`);
          return;
        }
        this.#state = S.Param;
        this.#param = c;
        this.#value = '';
        return;
      case S.Param:
        if (space(c)) this.#state = S.PreEqual;
        else if (c === '=') this.#state = S.PreValue;
        else if (c === '-') this.#fail(`unexpected "-" symbol after "${this.#param}" parameter in "${this.#name}" SSI command`);
        else if (this.#param.length === NAME_LEN) this.#fail(`too long "${this.#param}${c}..." parameter in "${this.#name}" SSI command`);
        else this.#param += c;
        return;
      case S.PreEqual:
        if (space(c)) return;
        if (c === '=') this.#state = S.PreValue;
        else this.#fail(`unexpected "${c}" symbol after "${this.#param}" parameter in "${this.#name}" SSI command`);
        return;
      case S.PreValue:
        if (space(c)) return;
        if (c === '"' || c === "'") {
          this.#quote = c;
          this.#state = S.Value;
        } else this.#fail(`unexpected "${c}" symbol before value of "${this.#param}" parameter in "${this.#name}" SSI command`);
        return;
      case S.Value:
        if (c === this.#quote) {
          this.#params.push([this.#param, this.#value]);
          this.#state = S.PostParam;
          return;
        }
        if (this.#value.length === this.#valueLength) {
          this.#fail(`too long "${this.#value}${c}..." value of "${this.#param}" parameter in "${this.#name}" SSI command`);
          return;
        }
        // nginx keeps the backslash and the character after it (evaluating the value removes it).
        this.#value += c;
        if (c === '\\') this.#state = S.QuotedSymbol;
        return;
      case S.QuotedSymbol:
        this.#state = S.Value;
        if (this.#value.length === this.#valueLength) {
          this.#fail(`too long "${this.#value}${c}..." value of "${this.#param}" parameter in "${this.#name}" SSI command`);
          return;
        }
        this.#value += c;
        return;
      case S.PostParam:
        if (space(c)) this.#state = S.PreParam;
        else if (c === '-') this.#state = S.End0;
        else this.#fail(`unexpected "${c}" symbol after "${this.#value}" value of "${this.#param}" parameter in "${this.#name}" SSI command`);
        return;
      case S.End0:
        if (c === '-') this.#state = S.End1;
        else this.#fail(`unexpected "${c}" symbol in "${this.#name}" SSI command`);
        return;
      case S.End1:
        if (c === '>') {
          this.#state = S.Text;
          out.push({ kind: 'command', command: { name: this.#name, params: this.#params, raw: this.#raw } });
        } else this.#fail(`unexpected "${c}" symbol in "${this.#name}" SSI command`);
        return;
      case S.Error:
        if (c === '-') this.#state = S.ErrorEnd0;
        return;
      case S.ErrorEnd0:
        this.#state = c === '-' ? S.ErrorEnd1 : S.Error;
        return;
      case S.ErrorEnd1:
        if (c === '>') {
          this.#state = S.Text;
          out.push({ kind: 'error', message: this.#error });
        } else if (c !== '-') this.#state = S.Error;
        return;
      case S.Text:
        return;
    }
  }
}
