/**
 * nginx "complex values": strings with `$name` / `${name}` references, compiled once at config
 * time into literal and variable parts (ngx_http_script_compile). Variable names are matched
 * case-insensitively by nginx, so they are stored lower-cased.
 */
import type { ComplexValue, ValuePart } from './types.js';

export type CompileResult =
  | { readonly ok: true; readonly value: ComplexValue; readonly variables: readonly string[] }
  | { readonly ok: false; readonly message: string };

function isNameChar(ch: string): boolean {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch === '_';
}

/** Compiles `raw` into parts; reports nginx's messages for malformed variable references. */
export function compileComplexValue(raw: string): CompileResult {
  const parts: ValuePart[] = [];
  const variables: string[] = [];
  let text = '';
  let i = 0;
  while (i < raw.length) {
    const ch = raw[i]!;
    if (ch !== '$') {
      text += ch;
      i++;
      continue;
    }
    i++;
    if (i === raw.length) return { ok: false, message: 'invalid variable name' };
    let name: string;
    const next = raw[i]!;
    if (next >= '1' && next <= '9') {
      // nginx: `$1`..`$9` are regex captures, one digit only ("$12" is $1 then "2").
      name = next;
      i++;
    } else {
      const bracket = next === '{';
      if (bracket) {
        i++;
        if (i === raw.length) return { ok: false, message: 'invalid variable name' };
      }
      const start = i;
      while (i < raw.length && isNameChar(raw[i]!)) i++;
      name = raw.slice(start, i);
      if (bracket) {
        if (raw[i] !== '}') {
          return { ok: false, message: `the closing bracket in "${name}" variable is missing` };
        }
        i++;
      }
      if (name === '') return { ok: false, message: 'invalid variable name' };
    }
    if (text !== '') {
      parts.push({ text });
      text = '';
    }
    const lower = name.toLowerCase();
    parts.push({ variable: lower });
    variables.push(lower);
  }
  if (text !== '') parts.push({ text });
  const constant = variables.length === 0 ? raw : null;
  return { ok: true, value: { raw, parts, constant }, variables };
}

/** A complex value with no variables (for built-in values such as defaults). */
export function constantValue(text: string): ComplexValue {
  return { raw: text, parts: text === '' ? [] : [{ text }], constant: text };
}
