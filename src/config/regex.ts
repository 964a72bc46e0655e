/**
 * nginx regular expressions (PCRE) as JavaScript RegExps. Conversions, applied outside
 * character classes: `(?P<name>` -> `(?<name>`, `(?P=name)` -> `\k<name>`, a leading `(?i)`
 * (and `(?s)`, `(?m)`) -> the flag, `\A` -> `^`, `\z` -> `$`, `\Z` -> `(?=\n?$)`.
 * Anything else JavaScript cannot express is reported with the engine's own message.
 */

export type RegexResult =
  | { readonly ok: true; readonly regex: RegExp }
  | { readonly ok: false; readonly message: string };

function convert(source: string, flags: Set<string>): string {
  let src = source;
  // Leading inline option groups, e.g. "(?i)^/api" or "(?is)".
  for (;;) {
    const m = /^\(\?([ism]+)\)/.exec(src);
    if (m === null) break;
    for (const f of m[1]!) flags.add(f);
    src = src.slice(m[0].length);
  }
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === '\\' && i + 1 < src.length) {
      const next = src[i + 1]!;
      i++;
      if (!inClass && next === 'A') out += '^';
      else if (!inClass && next === 'z') out += '$';
      else if (!inClass && next === 'Z') out += '(?=\\n?$)';
      else out += ch + next;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += ch;
      // A `]` right after `[` or `[^` is literal in PCRE; JavaScript needs it escaped.
      if (src[i + 1] === '^') {
        out += '^';
        i++;
      }
      if (src[i + 1] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (src.startsWith('(?P<', i)) {
      out += '(?<';
      i += 3;
      continue;
    }
    const backref = /^\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/.exec(src.slice(i));
    if (backref !== null) {
      out += `\\k<${backref[1]!}>`;
      i += backref[0].length - 1;
      continue;
    }
    out += ch;
  }
  return out;
}

/** Compiles an nginx regex; `caseless` is `~*` (and server names, which nginx always matches caselessly). */
export function compileRegex(source: string, caseless: boolean): RegexResult {
  const flags = new Set<string>(caseless ? ['i'] : []);
  const converted = convert(source, flags);
  const flagText = [...flags].sort().join('');
  try {
    return { ok: true, regex: new RegExp(converted, flagText) };
  } catch (err) {
    const raw = err instanceof Error ? err.message : String(err);
    const prefix = `Invalid regular expression: /${converted}/${flagText}: `;
    const detail = raw.startsWith(prefix) ? raw.slice(prefix.length) : raw;
    return { ok: false, message: `invalid regular expression "${source}": ${detail}` };
  }
}
