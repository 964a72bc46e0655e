/**
 * Tokenizer for the nginx configuration dialect, a port of ngx_conf_read_token():
 * words (bare, 'single' or "double" quoted), the punctuation `;` `{` `}`, `#` comments to the end
 * of a line, and line numbers counted as nginx counts them (1 + the newlines read so far).
 */

export type Token =
  | { readonly kind: 'word'; readonly value: string; readonly line: number }
  | { readonly kind: ';' | '{' | '}'; readonly line: number }
  /** `incomplete`: the text ended inside a word or a quoted string. */
  | { readonly kind: 'eof'; readonly line: number; readonly incomplete: boolean }
  | { readonly kind: 'error'; readonly message: string; readonly line: number };

function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
}

/**
 * nginx unescapes `\"` `\'` `\\` `\t` `\r` `\n` in every word, quoted or not, and keeps any other
 * backslash sequence as written (so `\d` and `\.` reach the regex engine unchanged).
 */
function unescape(raw: string): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '\\' && i + 1 < raw.length) {
      const next = raw[i + 1]!;
      if (next === '"' || next === "'" || next === '\\') {
        out += next;
        i++;
        continue;
      }
      if (next === 't' || next === 'r' || next === 'n') {
        out += next === 't' ? '\t' : next === 'r' ? '\r' : '\n';
        i++;
        continue;
      }
    }
    out += ch;
  }
  return out;
}

/**
 * Splits config text into tokens. Stops at the first lexical error, which becomes the last token
 * (followed by nothing); otherwise the last token is `eof`.
 */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let lastSpace = true;
  let needSpace = false;
  let sQuoted = false;
  let dQuoted = false;
  let escaped = false;
  let variable = false;
  let comment = false;
  let start = 0;

  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\n') {
      line++;
      if (comment) comment = false;
    }
    if (comment) continue;
    if (escaped) {
      escaped = false;
      continue;
    }

    if (needSpace) {
      if (isSpace(ch)) {
        lastSpace = true;
        needSpace = false;
        continue;
      }
      if (ch === ';' || ch === '{') {
        tokens.push({ kind: ch, line });
        lastSpace = true;
        needSpace = false;
        continue;
      }
      if (ch === ')') {
        lastSpace = true;
        needSpace = false;
      } else {
        tokens.push({ kind: 'error', message: `unexpected "${ch}"`, line });
        return tokens;
      }
    }

    if (lastSpace) {
      start = i;
      if (isSpace(ch)) continue;
      switch (ch) {
        case ';':
        case '{':
        case '}':
          tokens.push({ kind: ch, line });
          continue;
        case '#':
          comment = true;
          continue;
        case '\\':
          escaped = true;
          lastSpace = false;
          continue;
        case '"':
          start = i + 1;
          dQuoted = true;
          lastSpace = false;
          continue;
        case "'":
          start = i + 1;
          sQuoted = true;
          lastSpace = false;
          continue;
        case '$':
          variable = true;
          lastSpace = false;
          continue;
        default:
          lastSpace = false;
          continue;
      }
    }

    // Inside a word. `${` does not start a block; `}` never ends a bare word (nginx behaviour).
    if (ch === '{' && variable) continue;
    variable = false;
    if (ch === '\\') {
      escaped = true;
      continue;
    }
    if (ch === '$') {
      variable = true;
      continue;
    }
    let found = false;
    if (dQuoted) {
      if (ch === '"') {
        dQuoted = false;
        needSpace = true;
        found = true;
      }
    } else if (sQuoted) {
      if (ch === "'") {
        sQuoted = false;
        needSpace = true;
        found = true;
      }
    } else if (isSpace(ch) || ch === ';' || ch === '{') {
      lastSpace = true;
      found = true;
    }
    if (found) {
      // A word that spans lines is reported on the line where it ends, as nginx does.
      tokens.push({ kind: 'word', value: unescape(text.slice(start, i)), line });
      if (ch === ';' || ch === '{') tokens.push({ kind: ch, line });
    }
  }
  tokens.push({ kind: 'eof', line, incomplete: !lastSpace || needSpace });
  return tokens;
}
