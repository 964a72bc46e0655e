/**
 * The condition of `if (...)`, read as ngx_http_rewrite_if_condition reads it: the parentheses may
 * stand alone or touch the first and last words; a variable alone, `$v = text`, `$v != text`,
 * `$v ~ re`, `~*`, `!~`, `!~*`, or a file test `-f`/`-d`/`-e`/`-x` (each also with `!`) and a path.
 * Messages are nginx's ("invalid condition", "unexpected ... in condition").
 */
import type { BuildContext } from './build-context.js';
import type { Directive } from './parser.js';
import type { FileTest, RewriteCondition } from './types.js';

const FILE_TESTS: ReadonlySet<string> = new Set(['f', 'd', 'e', 'x']);

/** Parses the arguments of `if`; reports nginx's message and returns null when they are not a condition. */
export function parseCondition(d: Directive, cx: BuildContext): RewriteCondition | null {
  const words = [...d.args];
  let last = words.length - 1;
  const invalid = (word: string): null => {
    cx.problem(`invalid condition "${word}"`, d, 'write "if ($variable)", "if ($variable = value)", "if ($variable ~ regex)" or "if (-f $path)", with the parentheses');
    return null;
  };
  if (!words[0]!.startsWith('(')) return invalid(words[0]!);
  let cur: number;
  if (words[0] === '(') {
    cur = 1;
  } else {
    cur = 0;
    words[0] = words[0]!.slice(1);
  }
  if (!words[last]!.endsWith(')')) return invalid(words[last]!);
  if (words[last] === ')') last--;
  else words[last] = words[last]!.slice(0, -1);
  // nginx reads the word at cur even when the condition is empty ("if ()" reports ")").
  const p = words[cur] ?? '';

  if (p.length > 1 && p.startsWith('$')) {
    if (cur !== last && cur + 2 !== last) return invalid(p);
    const value = cx.complex(p, d);
    if (value === null) return null;
    if (cur === last) return { kind: 'value', value };
    const op = words[cur + 1]!;
    const operand = words[last]!;
    if (op === '=' || op === '!=') {
      const other = cx.complex(operand, d);
      if (other === null) return null;
      return { kind: 'compare', value, other, negate: op === '!=' };
    }
    if (op === '~' || op === '~*' || op === '!~' || op === '!~*') {
      const regex = cx.regex(operand, op.endsWith('*'), d);
      if (regex === null) return null;
      return { kind: 'regex', value, regex, source: operand, negate: op.startsWith('!') };
    }
    cx.problem(`unexpected "${op}" in condition`, d, 'the operators are =, !=, ~, ~*, !~ and !~*');
    return null;
  }

  if ((p.length === 2 && p[0] === '-') || (p.length === 3 && p.startsWith('!-'))) {
    if (cur + 1 !== last) return invalid(p);
    const negate = p[0] === '!';
    const test = p[negate ? 2 : 1]!;
    const path = cx.complex(words[last]!, d);
    if (path === null) return null;
    if (!FILE_TESTS.has(test)) return invalid(p);
    return { kind: 'file', path, test: test as FileTest, negate };
  }
  return invalid(p);
}
