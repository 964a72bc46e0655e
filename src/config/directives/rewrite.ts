/** ngx_http_rewrite_module's `return` (the only rewrite directive Sluice implements). */
import type { ComplexValue } from '../types.js';
import { TAKE12, settingsOf, type DirectiveSpec } from './table.js';

export const rewriteDirectives: readonly DirectiveSpec[] = [
  {
    // nginx runs the first `return` of a level; later ones are accepted and never reached.
    name: 'return', contexts: ['server', 'location'], args: TAKE12, repeatable: true,
    handle(d, scope, cx) {
      const first = d.args[0]!;
      let code: number;
      let textArg: string | null;
      if (/^[0-9]+$/.test(first)) {
        code = Number(first);
        if (code > 999) {
          cx.problem(`invalid return code "${first}"`, d, 'status codes are 0 to 999');
          return;
        }
        textArg = d.args[1] ?? null;
      } else if (d.args.length === 1
        && ((first.length > 7 && first.startsWith('http://'))
          || (first.length > 8 && first.startsWith('https://'))
          || first.startsWith('$scheme'))) {
        code = 302;
        textArg = first;
      } else {
        cx.problem(`invalid return code "${first}"`, d, 'use "return CODE [TEXT]", "return CODE URL" or "return URL"');
        return;
      }
      let text: ComplexValue | null = null;
      if (textArg !== null) {
        text = cx.complex(textArg, d);
        if (text === null) return;
      }
      const settings = settingsOf(scope);
      settings.returnAction ??= { code, text };
    },
  },
];
