/** ngx_http_headers_module: `add_header` and `expires`. */
import { parseExpires } from '../expires.js';
import { coreOf } from './http-flags.js';
import { TAKE12, TAKE23, HTTP_SERVER_LOCATION, settingsOf, type DirectiveSpec } from './table.js';

export const headersDirectives: readonly DirectiveSpec[] = [
  {
    name: 'add_header', contexts: HTTP_SERVER_LOCATION, args: TAKE23, repeatable: true,
    handle(d, scope, cx) {
      const [name, raw, flag] = d.args;
      if (flag !== undefined && flag !== 'always') {
        cx.problem(`invalid parameter "${flag}"`, d, 'the only parameter of "add_header" is "always"');
        return;
      }
      const value = cx.headerField(name!, raw!, d);
      if (value === null) return;
      (settingsOf(scope).addHeaders ??= []).push({ name: name!, value, always: flag === 'always' });
    },
  },
  {
    name: 'expires', contexts: HTTP_SERVER_LOCATION, args: TAKE12,
    handle(d, scope, cx) {
      if (d.args.length === 2 && d.args[0] !== 'modified') {
        cx.problem(`"${d.name}" directive invalid value`, d, 'the first of two arguments can only be "modified": "expires modified TIME;"');
        return;
      }
      const modified = d.args.length === 2;
      const text = d.args[d.args.length - 1]!;
      const value = cx.complex(text, d);
      if (value === null) return;
      if (value.constant === null) {
        coreOf(scope).expires = { kind: 'variable', modified, value };
        return;
      }
      const parsed = parseExpires(text, modified);
      if (!parsed.ok) {
        cx.problem(`"${d.name}" directive ${parsed.error}`, d, 'use a time ("1h", "30d", "-1"), "@TIME" of day ("@15h30m"), "epoch", "max" or "off"');
        return;
      }
      coreOf(scope).expires = parsed.value;
    },
  },
];
